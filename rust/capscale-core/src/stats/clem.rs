//! clembench's aggregation, exactly as `clemcore`'s evaluation computes it: per game
//! `% Played = round2(100·mean(1 − Aborted))` over all episodes and
//! `Quality = round2(mean(Main Score))` over the episodes whose Main Score is not NaN (NaN when
//! aborted — but a game may log a score for aborted episodes, e.g. adventuregame, and
//! clembench then averages it in),
//! then `Average % Played` and `Average Quality` as means of the rounded per-game numbers
//! (games without a quality are skipped) and `clemscore = round2(avg_played/100 · avg_quality)`
//! from the rounded averages. `round2` is NumPy's `rint(x·100)/100`.

use super::aggregate::{group_sizes, round_half_even};
use crate::error::{check_len, CoreError, CoreResult};
use crate::parallel::run_indexed;
use crate::rng::Stream;

/// One game's numbers (as in a clembench results table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GameScore {
    /// Episodes of the game.
    pub episodes: usize,
    /// `% Played` (rounded to 2 decimals).
    pub played: f64,
    /// `Quality Score` (rounded; NaN when no episode has a Main Score).
    pub quality: f64,
    /// `Quality Score (std)`: sample std (ddof 1) of the Main Scores, rounded; NaN for < 2.
    pub quality_std: f64,
}

/// A model's clembench row.
#[derive(Debug, Clone, PartialEq)]
pub struct ClemTable {
    /// Per game, in label order.
    pub games: Vec<GameScore>,
    /// `Average % Played` (rounded).
    pub avg_played: f64,
    /// `Average Quality Score` (rounded; NaN if no game has a quality).
    pub avg_quality: f64,
    /// `clemscore` (rounded).
    pub clemscore: f64,
}

fn check_episodes(game: &[u32], aborted: &[f64], main_score: &[f64]) -> CoreResult<Vec<usize>> {
    check_len("aborted", aborted.len(), game.len())?;
    check_len("main_score", main_score.len(), game.len())?;
    if game.is_empty() {
        return Err(CoreError::InvalidArgument(
            "no episodes to aggregate".into(),
        ));
    }
    for (i, (&a, &s)) in aborted.iter().zip(main_score).enumerate() {
        if a != 0.0 && a != 1.0 {
            return Err(CoreError::InvalidArgument(format!(
                "Aborted must be 0 or 1, got {a} for episode {i}"
            )));
        }
        if s.is_infinite() {
            return Err(CoreError::NonFinite(format!(
                "the Main Score of episode {i} is {s} (NaN marks a missing score)"
            )));
        }
    }
    group_sizes(game, game.len(), "game")
}

/// Unrounded per-game (played fraction × 100, quality) and the clemscore built from them —
/// the statistic of the bootstrap.
fn raw_scores(sums: &[[f64; 4]]) -> f64 {
    // sums[g] = [episodes, played, Σ Main Score (non-NaN), count of non-NaN Main Scores]
    let (mut played, mut quality, mut nq) = (0.0, 0.0, 0usize);
    for &[n, p, s, c] in sums {
        played += 100.0 * p / n;
        if c > 0.0 {
            quality += s / c;
            nq += 1;
        }
    }
    let g = sums.len() as f64;
    if nq == 0 {
        return 0.0;
    }
    (played / g) / 100.0 * (quality / nq as f64)
}

/// clembench's table row for one model from its episodes: `game` labels `0..k`,
/// `aborted` ∈ {0, 1}, `main_score` (NaN where missing, as for aborted episodes).
pub fn clem_table(game: &[u32], aborted: &[f64], main_score: &[f64]) -> CoreResult<ClemTable> {
    let sizes = check_episodes(game, aborted, main_score)?;
    let k = sizes.len();
    let mut played = vec![0.0; k];
    let mut scores: Vec<Vec<f64>> = vec![Vec::new(); k];
    for i in 0..game.len() {
        let g = game[i] as usize;
        if aborted[i] == 0.0 {
            played[g] += 1.0;
        }
        if !main_score[i].is_nan() {
            scores[g].push(main_score[i]);
        }
    }
    let round2 = |x: f64| round_half_even(x, 2);
    let games: Vec<GameScore> = (0..k)
        .map(|g| {
            let n = scores[g].len();
            let mean = scores[g].iter().sum::<f64>() / n as f64;
            let std = if n > 1 {
                (scores[g].iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                f64::NAN
            };
            GameScore {
                episodes: sizes[g],
                played: round2(100.0 * played[g] / sizes[g] as f64),
                quality: if n > 0 { round2(mean) } else { f64::NAN },
                quality_std: round2(std),
            }
        })
        .collect();
    let avg_played = round2(games.iter().map(|g| g.played).sum::<f64>() / k as f64);
    let q: Vec<f64> = games
        .iter()
        .map(|g| g.quality)
        .filter(|q| !q.is_nan())
        .collect();
    let avg_quality = if q.is_empty() {
        f64::NAN
    } else {
        round2(q.iter().sum::<f64>() / q.len() as f64)
    };
    let clemscore = if avg_quality.is_nan() {
        0.0
    } else {
        round2(avg_played / 100.0 * avg_quality)
    };
    Ok(ClemTable {
        games,
        avg_played,
        avg_quality,
        clemscore,
    })
}

/// Bootstrap replicates of the (unrounded) clemscore, resampling episodes within each game
/// (stream `b` of `seed` for replicate `b`; games in label order, `n_g` draws each).
pub fn clemscore_replicates(
    game: &[u32],
    aborted: &[f64],
    main_score: &[f64],
    n_resamples: usize,
    seed: u64,
    n_threads: usize,
) -> CoreResult<Vec<f64>> {
    let sizes = check_episodes(game, aborted, main_score)?;
    let mut members: Vec<Vec<usize>> = sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
    for (i, &g) in game.iter().enumerate() {
        members[g as usize].push(i);
    }
    run_indexed(n_resamples, n_threads, |b| {
        let mut rng = Stream::new(seed, b as u64);
        let sums: Vec<[f64; 4]> = members
            .iter()
            .map(|idx| {
                let (mut p, mut s, mut c) = (0.0, 0.0, 0.0);
                for _ in 0..idx.len() {
                    let i = idx[rng.below(idx.len() as u64) as usize];
                    if aborted[i] == 0.0 {
                        p += 1.0;
                    }
                    if !main_score[i].is_nan() {
                        s += main_score[i];
                        c += 1.0;
                    }
                }
                [idx.len() as f64, p, s, c]
            })
            .collect();
        raw_scores(&sums)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toy_row_matches_hand_computation() {
        // A two-game toy: game 0 played 3/4 with scores 100, 50, 0; game 1 all aborted.
        let game = [0, 0, 0, 0, 1, 1];
        let aborted = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let main = [100.0, 50.0, 0.0, f64::NAN, f64::NAN, f64::NAN];
        let t = clem_table(&game, &aborted, &main).unwrap();
        assert_eq!(t.games[0].played, 75.0);
        assert_eq!(t.games[0].quality, 50.0);
        assert_eq!(t.games[0].quality_std, 50.0);
        assert!(t.games[1].quality.is_nan());
        assert_eq!(t.avg_played, 37.5);
        assert_eq!(t.avg_quality, 50.0);
        assert_eq!(t.clemscore, 18.75);
    }
}
