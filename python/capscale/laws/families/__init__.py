"""The built-in law families (importing this package registers them)."""
