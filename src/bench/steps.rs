//! Timed training steps: a warmed-up trainer stepping through a data set,
//! and the random images the benchmarks and forecasts step through (speed
//! does not depend on the pixel values, and needs no download).

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::stats::median;
use crate::tensor::{GemmBackend, Matrix, Parallelism};
use crate::train::Trainer;
use std::time::Instant;

/// Samples of the benchmark's random data sets: speed does not depend on
/// the pixel values, and the benchmark needs no download.
pub const RANDOM_SAMPLES: usize = 10_000;

/// `n` random images of `image` (channels, height, width) in 10 classes.
pub fn random_images(image: (usize, usize, usize), n: usize) -> Dataset {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let len = image.0 * image.1 * image.2;
    let x = (0..n * len).map(|_| rng.random::<f32>()).collect();
    Dataset {
        inputs: Matrix::from_vec(n, len, x).expect("n x len values"),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        classes: 10,
        image,
    }
}

/// Seconds per training sample of `cfg`'s step on `data` (batch
/// `cfg.batch_size`) with `par`: the median of `rounds` rounds of `steps`
/// steps, after `warmup` steps.
pub fn time_steps(
    cfg: &RunConfig,
    data: &Dataset,
    par: &Parallelism,
    warmup: usize,
    (rounds, steps): (usize, usize),
) -> f64 {
    par.install(|| {
        let (mut step, _) = step_loop(cfg, data, par, warmup);
        let mut times: Vec<f64> = (0..rounds.max(1))
            .map(|r| {
                let t0 = Instant::now();
                for i in 0..steps.max(1) {
                    step(warmup + r * steps + i);
                }
                t0.elapsed().as_secs_f64() / (steps.max(1) * cfg.batch_size) as f64
            })
            .collect();
        median(&mut times)
    })
}

/// A trainer of `cfg` on `par`, warmed up by `warmup` steps, as a closure
/// that trains step `i` (batches of `data` in turn), and the GEMM backend
/// its products run on. Call it inside `par.install`, so that its products
/// start on this thread.
pub(super) fn step_loop<'a>(
    cfg: &RunConfig,
    data: &'a Dataset,
    par: &Parallelism,
    warmup: usize,
) -> (impl FnMut(usize) + 'a, GemmBackend) {
    let splits = crate::data::Splits {
        train: data.clone(),
        val: data.slice(0..0),
        test: data.slice(0..0),
    };
    let one_thread = RunConfig {
        threads: 1,
        ..cfg.clone()
    };
    let mut t: Trainer =
        crate::run::build_trainer(&one_thread, &splits, None).expect("valid benchmark config");
    t.set_parallelism(par.clone());
    let backend = t.backend();
    let b = cfg.batch_size;
    let batches = (data.len() / b).max(1);
    let order: Vec<usize> = (0..data.len()).collect();
    let mut step = move |i: usize| {
        let chunk = &order[(i % batches) * b..((i % batches) * b + b).min(data.len())];
        t.load_batch(data, chunk);
        // Random inputs at the default rate never diverge; a step that did
        // would only be timed without its update.
        let _ = t.step(chunk.len());
    };
    for i in 0..warmup {
        step(i);
    }
    (step, backend)
}
