//! What a run will take, told before it runs (`--dry-run`): its memory
//! part by part against what the machine has, its FLOPs an epoch, and the
//! time they take. An MLP's step is its products, so its time is its FLOPs
//! at the rate this machine's GEMM reaches on the run's largest product,
//! measured in a fraction of a second. A convolutional network's step is
//! not: its patch copies and pooling, and its short products, make it run
//! at a fraction of that rate (lenet-mnist at a twentieth), so a few of its
//! real steps are timed on random images instead. No data is loaded: the
//! data set's sizes are known ([`DataShape`]).

use super::peaks::quick_gemm_gflops;
use super::steps::{random_images, time_steps, RANDOM_SAMPLES};
use crate::config::RunConfig;
use crate::error::Result;
use crate::layers::spec::Planned;
use crate::layers::Kind;
use crate::resources::{self, bytes, count, Available, Compute, DataShape, Estimate};
use crate::tensor::{with_gemm_backend, Parallelism};
use std::collections::HashMap;

/// Seconds spent measuring the GEMM rate of one product shape.
const MEASURE_SECONDS: f64 = 0.2;

/// Each side of a measured product is at most this (the rate of a larger
/// product is that of its blocks; the measurement stays quick).
const MEASURE_SIDE: usize = 2048;

/// The forecast of one run.
#[derive(Clone, Debug)]
pub struct Forecast {
    /// The data set's sizes.
    pub data: DataShape,
    /// Trainable parameters of the forward network.
    pub parameters: u128,
    /// The memory, part by part.
    pub estimate: Estimate,
    /// What the machine has left, where known.
    pub available: Option<Available>,
    /// FLOPs of an epoch.
    pub compute: Compute,
    /// Epochs of the run.
    pub epochs: usize,
    /// The product whose rate was measured, `m x k x n`.
    pub gemm_shape: (usize, usize, usize),
    /// The rate the FLOPs are taken at, on `threads` threads, in GFLOP/s:
    /// the product's, or the timed steps' ([`Forecast::steps_timed`]).
    pub gflops: f64,
    /// Steps of the network timed for the rate (convolutional networks),
    /// none when it is the product's.
    pub steps_timed: Option<usize>,
    /// Threads the rate was measured on.
    pub threads: usize,
    /// True when the memory fits what the machine has (or it is unknown).
    pub fits: bool,
    /// Why the run would be refused (threads, memory), if it would.
    pub refusal: Option<String>,
}

/// Rounds and steps a round of a convolutional network's timed steps
/// (after [`STEPS_WARMUP`]), the median round's rate taken.
const STEPS_TIMED: (usize, usize) = (3, 3);

/// Untimed steps first: the first ones page in the buffers.
const STEPS_WARMUP: usize = 2;

/// The learning rate of the timed steps (forward and feedback).
const TIMED_LR: f32 = 1e-4;

/// Rates measured so far, so that the cells of a sweep that share a product
/// shape (or a network, rule, batch and threads) are measured once.
#[derive(Default)]
pub struct Rates {
    gemm: HashMap<(usize, usize, usize, usize), f64>,
    steps: HashMap<String, f64>,
    pools: HashMap<usize, Parallelism>,
}

impl Rates {
    /// GFLOP/s of `cfg`'s training step on `threads` threads, timed on
    /// random images of the data set's shape.
    fn steps(&mut self, cfg: &RunConfig, data: &DataShape, threads: usize) -> Result<f64> {
        let key = format!(
            "{} {} {} {} {} {} {:?} {:?}",
            cfg.rule,
            cfg.layer_description().unwrap_or_default(),
            data.image,
            data.classes,
            cfg.batch_size,
            threads,
            cfg.optimizer,
            cfg.gemm.resolve()
        );
        if let Some(&r) = self.steps.get(&key) {
            return Ok(r);
        }
        let image = (data.image.c, data.image.h, data.image.w);
        let samples = cfg.batch_size * (STEPS_WARMUP + STEPS_TIMED.0 * STEPS_TIMED.1);
        let mut images = random_images(image, samples.min(RANDOM_SAMPLES));
        images.classes = data.classes;
        for l in &mut images.labels {
            *l = (*l as usize % data.classes.max(1)) as u8;
        }
        // One pool per thread count: a pool made per call would leave the
        // last one's threads competing for the cores.
        let par = match self.pools.get(&threads) {
            Some(p) => p.clone(),
            None => {
                let p = Parallelism::threads(threads)?;
                self.pools.insert(threads, p.clone());
                p
            }
        };
        // At the run's own rate random images may diverge, and a diverged
        // step skips its update: timed at a small rate, every step is whole.
        let small = RunConfig {
            lr: TIMED_LR,
            feedback_lr: cfg.feedback_lr.map(|_| TIMED_LR),
            ..cfg.clone()
        };
        let per_sample = time_steps(&small, &images, &par, STEPS_WARMUP, STEPS_TIMED);
        let plan = cfg.network_plan(data.image, data.classes)?;
        let rate = resources::flops_per_sample(cfg.rule, &plan) / per_sample / 1e9;
        self.steps.insert(key, rate);
        Ok(rate)
    }

    fn get(&mut self, cfg: &RunConfig, shape: (usize, usize, usize), threads: usize) -> f64 {
        *self
            .gemm
            .entry((shape.0, shape.1, shape.2, threads))
            .or_insert_with(|| {
                let (m, k, n) = shape;
                let par = Parallelism::threads(threads).unwrap_or_default();
                let backend = cfg.gemm.resolve();
                par.install(|| {
                    with_gemm_backend(backend, || quick_gemm_gflops(m, k, n, MEASURE_SECONDS))
                })
            })
    }
}

/// The product of the layer with the most multiply-adds at `batch` rows,
/// `m x k x n`, each side clamped to what is quick to measure.
fn largest_product(plan: &[Planned], batch: usize) -> (usize, usize, usize) {
    let kind = plan
        .iter()
        .map(|(k, ..)| k)
        .max_by_key(|k| k.macs())
        .expect("a plan has layers");
    let (m, k, n) = match kind {
        Kind::Dense(d) => (batch, d.inputs, d.outputs),
        Kind::Conv2d(g) | Kind::ConvTranspose(g) => (
            batch.saturating_mul(g.positions()),
            g.patch_len(),
            g.out_channels,
        ),
    };
    let side = |x: usize| x.clamp(1, MEASURE_SIDE);
    (side(m), side(k), side(n))
}

/// The forecast of `cfg` on `threads` threads (its own resolved, else
/// what the caller runs it on), writing a checkpoint when `checkpoint`.
/// Errors only when the data set's sizes or the network cannot be known;
/// a run that would be refused has its [`Forecast::refusal`].
pub fn forecast(
    cfg: &RunConfig,
    threads: usize,
    checkpoint: bool,
    rates: &mut Rates,
) -> Result<Forecast> {
    let data = DataShape::of(cfg)?;
    let plan = cfg.network_plan(data.image, data.classes)?;
    let extras = resources::run_extras(cfg, Some(&data), checkpoint);
    let estimate = resources::estimate_plan(cfg, data.image, &plan, &extras);
    let fits = resources::check(&estimate).is_ok();
    let refusal = resources::check_plan(cfg, data.image, &plan, &extras)
        .err()
        .map(|e| e.to_string());
    let compute = Compute::of(cfg, &plan, &data);
    let parameters = plan
        .iter()
        .map(|(k, ..)| {
            let (r, c) = k.weight_matrix_shape();
            (r as u128)
                .saturating_mul(c as u128)
                .saturating_add(k.out_shape().c as u128)
        })
        .fold(0u128, u128::saturating_add);
    let gemm_shape = largest_product(&plan, cfg.batch_size);
    // A refused thread count is measured on the threads there are.
    let threads = threads.min(crate::tensor::thread_limit()).max(1);
    let convolutional = plan.iter().any(|(k, ..)| k.is_convolution());
    // Steps are timed only where the trainer is sure to fit: a forecast
    // allocates nothing large.
    let (gflops, steps_timed) = if convolutional && refusal.is_none() && fits {
        let steps = STEPS_TIMED.0 * STEPS_TIMED.1;
        (rates.steps(cfg, &data, threads)?, Some(steps))
    } else {
        (rates.get(cfg, gemm_shape, threads), None)
    };
    Ok(Forecast {
        data,
        parameters,
        estimate,
        available: resources::available_memory(),
        compute,
        epochs: cfg.epochs,
        gemm_shape,
        gflops,
        steps_timed,
        threads,
        fits,
        refusal,
    })
}

/// `3.81 MFLOP`: a count of FLOPs with an SI prefix.
pub fn flop(x: f64) -> String {
    let mut v = x;
    for unit in ["FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP"] {
        if v < 1000.0 {
            return format!("{} {unit}", three_digits(v));
        }
        v /= 1000.0;
    }
    format!("{} EFLOP", three_digits(v))
}

fn three_digits(v: f64) -> String {
    let d = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.d$}")
}

/// `7.0 s`, `2.3 min`, `1.5 h`, `2.1 days`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "forever".into();
    }
    if seconds < 90.0 {
        format!("{seconds:.1} s")
    } else if seconds < 5400.0 {
        format!("{:.1} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

impl Forecast {
    /// Seconds of an epoch at the measured rate.
    pub fn epoch_seconds(&self) -> f64 {
        self.compute.epoch() / (self.gflops * 1e9)
    }

    /// `about 300 MB of the 23.2 GB available: fits`.
    pub fn memory_line(&self) -> String {
        let need = bytes(self.estimate.total());
        let verdict = if self.fits { "fits" } else { "does NOT fit" };
        match self.available {
            Some(a) => format!(
                "about {need}, of the {} available ({}): {verdict}",
                bytes(a.bytes.into()),
                a.source
            ),
            None => format!("about {need} (the memory available is unknown here)"),
        }
    }

    /// `210 GFLOP an epoch, about 7.0 s an epoch, 2.3 min for 20 epochs`.
    pub fn time_line(&self) -> String {
        let s = self.epoch_seconds();
        format!(
            "{} an epoch, about {} an epoch, {} for {} epochs",
            flop(self.compute.epoch()),
            duration(s),
            duration(s * self.epochs as f64),
            self.epochs
        )
    }

    /// The whole report, one item a line (what `biprop train --dry-run` prints).
    pub fn report(&self, cfg: &RunConfig) -> Vec<String> {
        let d = &self.data;
        let mut out = vec![format!(
            "run: {} on {} ({} train + {} test samples of {}), network {}, {} parameters, batch {}",
            cfg.rule,
            cfg.dataset.name(),
            count(d.train),
            count(d.test),
            d.image,
            cfg.architecture(),
            count(self.parameters.min(usize::MAX as u128) as usize),
            cfg.batch_size,
        )];
        out.push(format!("memory: {}", self.memory_line()));
        for (c, b) in self.estimate.by_category() {
            out.push(format!("  {:<32} {:>10}", c.name(), bytes(b)));
        }
        out.push(format!("  largest: {}", self.estimate.drivers(3)));
        let c = &self.compute;
        out.push(format!(
            "compute: {} a training sample, {} an evaluated one; {} an epoch ({} trained, {} evaluated)",
            flop(c.per_sample),
            flop(c.forward),
            flop(c.epoch()),
            count(c.train_samples),
            count(c.eval_samples)
        ));
        let (m, k, n) = self.gemm_shape;
        let how = match self.steps_timed {
            Some(s) => format!(
                "{s} training steps of this network timed on random images, {} thread(s); \
                 evaluation taken at the same rate",
                self.threads
            ),
            None => format!(
                "this machine's GEMM on {m} x {k} x {n}, {} thread(s); elementwise work comes \
                 on top",
                self.threads
            ),
        };
        out.push(format!(
            "time: about {} an epoch, {} for {} epochs, at {:.1} GFLOP/s ({how})",
            duration(self.epoch_seconds()),
            duration(self.epoch_seconds() * self.epochs as f64),
            self.epochs,
            self.gflops,
        ));
        out
    }
}
