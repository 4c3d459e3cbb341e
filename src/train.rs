//! The training step and evaluation, over buffers allocated once.
//!
//! One step: forward pass, output error, the hidden errors along the rule's
//! error paths ([`hidden_deltas`]), the forward update ([`NetUpdater`]), then
//! the rule's feedback update. The step allocates nothing.

use crate::data::{augment, Augment, Dataset, Standardize};
use crate::error::{Error, Result};
use crate::named::NamedTensorMut;
use crate::network::{argmax_rows, Activations, Network};
use crate::optim::OptimConfig;
use crate::rules::{backward::hidden_deltas, FeedbackStep, LearningRule};
use crate::tensor::{with_gemm_backend, GemmBackend, Matrix, Parallelism};
use crate::update::NetUpdater;

/// Rows evaluated at once.
pub const EVAL_ROWS: usize = 1000;

/// Loss and error counts summed over samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Summed loss.
    pub loss: f64,
    /// Misclassified samples.
    pub errors: usize,
    /// Samples seen.
    pub samples: usize,
}

impl Tally {
    /// Mean loss per sample.
    pub fn mean_loss(&self) -> f64 {
        self.loss / self.samples.max(1) as f64
    }

    /// Fraction misclassified.
    pub fn error_rate(&self) -> f64 {
        self.errors as f64 / self.samples.max(1) as f64
    }

    fn add(&mut self, o: Tally) {
        self.loss += o.loss;
        self.errors += o.errors;
        self.samples += o.samples;
    }
}

/// A network, its learning rule, its optimizer state and every buffer of the step.
pub struct Trainer {
    /// The forward network.
    pub net: Network,
    /// The learning rule.
    pub rule: Box<dyn LearningRule>,
    updater: NetUpdater,
    par: Parallelism,
    backend: GemmBackend,
    max_rows: usize,
    acts: Activations,
    deltas: Vec<Matrix>,
    targets: Matrix,
    logits: Matrix,
    eval_acts: Activations,
    eval_targets: Matrix,
    eval_err: Matrix,
    augment: Augment,
    augment_seed: u64,
    epoch: usize,
    /// One input image, for [`augment::apply`]'s copy (empty without augmentation).
    scratch: Vec<f32>,
    /// The input statistics every loaded input is standardized with, if any.
    standardize: Option<Standardize>,
    /// Per channel, what a zero pixel is after loading: the crops' padding.
    fill: Vec<f32>,
}

impl Trainer {
    /// Allocates every buffer for batches of up to `max_rows` samples. The
    /// trainer computes on the calling thread until given more
    /// ([`Trainer::set_parallelism`]; `run::build_trainer` gives it the
    /// configuration's `threads`).
    pub fn new(
        net: Network,
        rule: Box<dyn LearningRule>,
        opt: OptimConfig,
        max_rows: usize,
    ) -> Self {
        let acts = net.buffers(max_rows);
        let deltas = net.sizes()[1..]
            .iter()
            .map(|&n| Matrix::zeros(max_rows, n))
            .collect();
        let c = net.outputs();
        let channels = net.input.c;
        Self {
            targets: Matrix::zeros(max_rows, c),
            eval_acts: net.buffers(EVAL_ROWS),
            eval_targets: Matrix::zeros(EVAL_ROWS, c),
            eval_err: Matrix::zeros(EVAL_ROWS, c),
            logits: Matrix::zeros(max_rows, c),
            updater: NetUpdater::new(&net, opt),
            par: Parallelism::Seq,
            backend: GemmBackend::Auto.resolve(),
            net,
            rule,
            max_rows,
            acts,
            deltas,
            augment: Augment::None,
            augment_seed: 0,
            epoch: 1,
            scratch: Vec::new(),
            standardize: None,
            fill: vec![0.0; channels],
        }
    }

    /// Standardizes every input this trainer loads from now on (training
    /// batches, evaluation, predictions) with `s`, or none. Its shape must
    /// be the network's input's.
    pub fn set_standardize(&mut self, s: Option<Standardize>) -> Result<()> {
        let input = self.net.input;
        if let Some(s) = &s {
            s.check()?;
            if s.channels() != input.c || s.plane() != input.h * input.w {
                return Err(Error::Mismatch(format!(
                    "input statistics of {} channels of {} values, for inputs of {input}",
                    s.channels(),
                    s.plane()
                )));
            }
        }
        self.fill = s
            .as_ref()
            .map_or_else(|| vec![0.0; input.c], Standardize::zero);
        self.standardize = s;
        Ok(())
    }

    /// The input statistics, if inputs are standardized.
    pub fn standardize(&self) -> Option<&Standardize> {
        self.standardize.as_ref()
    }

    /// The input statistics to load a checkpoint's into (then checked by
    /// [`Trainer::set_standardize`] again, which the caller must do).
    pub fn take_standardize(&mut self) -> Option<Standardize> {
        self.standardize.take()
    }

    /// Augments the training batches of [`Trainer::train_epoch`] (and of
    /// [`Trainer::augment_loaded`]) from now on, drawn from `seed`. The
    /// inputs must be images (height and width above 1).
    pub fn set_augment(&mut self, augment: Augment, seed: u64) -> Result<()> {
        let image = self.net.input;
        if augment != Augment::None && (image.h < 2 || image.w < 2) {
            return Err(Error::Config(format!(
                "augment = {augment:?} flips and shifts images, but the inputs are {image}: \
                 use an image data set, or augment = none"
            )));
        }
        self.augment = augment;
        self.augment_seed = seed;
        self.scratch = vec![
            0.0;
            if augment == Augment::None {
                0
            } else {
                image.len()
            }
        ];
        Ok(())
    }

    /// The 1-based epoch that the augmentation draws for.
    pub fn set_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
    }

    /// Augments the loaded batch, whose row `r` is training sample
    /// `samples[r]` (the draw depends on the sample and the epoch, not on
    /// its place in the batch). Nothing without augmentation.
    pub fn augment_loaded(&mut self, samples: &[usize]) {
        if self.augment == Augment::None {
            return;
        }
        let s = self.net.input;
        for (r, &i) in samples.iter().enumerate() {
            let d = self.augment.draw(self.augment_seed, self.epoch, i);
            augment::apply(
                d,
                (s.c, s.h, s.w),
                self.acts[0].row_mut(r),
                &mut self.scratch,
                &self.fill,
            );
        }
    }

    /// Where this trainer's products run, from now on.
    pub fn set_parallelism(&mut self, par: Parallelism) {
        self.par = par;
    }

    /// Where this trainer's products run.
    pub fn parallelism(&self) -> &Parallelism {
        &self.par
    }

    /// The GEMM kernels of this trainer's products, from now on (`Auto`:
    /// this CPU's; see [`GemmBackend`]).
    pub fn set_backend(&mut self, backend: GemmBackend) {
        self.backend = backend.resolve();
    }

    /// The GEMM kernels of this trainer's products.
    pub fn backend(&self) -> GemmBackend {
        self.backend
    }

    /// Runs `f` with this trainer's parallelism and GEMM backend: for work
    /// beside the trainer's own methods that computes products (alignment
    /// probes, a run's evaluation).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let backend = self.backend;
        self.par.install(move || with_gemm_backend(backend, f))
    }

    /// [`Trainer::install`] for the trainer's own methods.
    fn with_compute<R: Send>(&mut self, f: impl FnOnce(&mut Self) -> R + Send) -> R {
        let (par, backend) = (self.par.clone(), self.backend);
        par.install(|| with_gemm_backend(backend, || f(self)))
    }

    /// The largest batch the buffers hold.
    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.updater.steps()
    }

    /// Every optimizer state tensor (forward `optim.forward.*`, then the
    /// rule's `optim.feedback.*`), for checkpoints that resume exactly.
    pub fn optimizer_state_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        let mut v = self.updater.state_tensors_mut("optim.forward");
        v.extend(self.rule.optimizer_state_mut());
        v
    }

    /// Scales every learning rate (forward and feedback) by a schedule's
    /// `factor`, from the configured ones.
    pub fn set_lr_factor(&mut self, factor: f32) {
        self.updater.set_lr_factor(factor);
        self.rule.set_lr_factor(factor);
    }

    /// Sets the step count of every optimizer (when resuming).
    pub fn set_steps(&mut self, steps: u64) {
        self.updater.set_steps(steps);
        self.rule.set_steps(steps);
    }

    /// Activations of the last step (see [`crate::network`] for the layout).
    pub fn activations(&self) -> &Activations {
        &self.acts
    }

    /// One-hot targets of the loaded batch.
    pub fn targets(&self) -> &Matrix {
        &self.targets
    }

    /// Output pre-activations of the last step.
    pub fn logits(&self) -> &Matrix {
        &self.logits
    }

    /// Errors of the last step: hidden errors, then the output error.
    pub fn deltas(&self) -> &[Matrix] {
        &self.deltas
    }

    /// Loads `rows` samples given as row-major inputs and targets as the next
    /// batch. Values from outside are checked where they enter: NaN or
    /// infinity in either is an [`Error::BadInput`] naming the first bad row,
    /// and slices of the wrong sizes an [`Error::Mismatch`].
    pub fn load_rows(&mut self, inputs: &[f32], targets: &[f32], rows: usize) -> Result<()> {
        let (n, c) = (self.net.inputs(), self.net.outputs());
        if rows > self.max_rows {
            return Err(Error::Mismatch(format!(
                "a batch of {rows} rows; the trainer holds at most {} (batch_size)",
                self.max_rows
            )));
        }
        if inputs.len() != rows * n || targets.len() != rows * c {
            return Err(Error::Mismatch(format!(
                "load_rows: expected {rows} x {n} inputs and {rows} x {c} targets, got {} and {} values",
                inputs.len(),
                targets.len()
            )));
        }
        check_finite("inputs", inputs, n)?;
        check_finite("targets", targets, c)?;
        self.acts[0].rows_slice_mut(rows).copy_from_slice(inputs);
        if let Some(s) = &self.standardize {
            s.apply(self.acts[0].rows_slice_mut(rows));
        }
        self.targets.rows_slice_mut(rows).copy_from_slice(targets);
        Ok(())
    }

    /// Loads samples `idx` of `ds` as the next batch.
    pub fn load_batch(&mut self, ds: &Dataset, idx: &[usize]) {
        assert!(idx.len() <= self.max_rows, "batch larger than the buffers");
        ds.gather(idx, &mut self.acts[0], &mut self.targets);
        if let Some(s) = &self.standardize {
            s.apply(self.acts[0].rows_slice_mut(idx.len()));
        }
    }

    /// Forward pass, output error and the rule's hidden errors for the loaded
    /// batch of `rows` samples, without updating anything.
    pub fn compute_errors(&mut self, rows: usize) -> Tally {
        self.with_compute(|t| t.compute_errors_here(rows))
    }

    fn compute_errors_here(&mut self, rows: usize) -> Tally {
        self.net.forward(&mut self.acts, rows);
        let l = self.net.hidden_layers();
        let out = self.acts.output_mut();
        self.logits
            .rows_slice_mut(rows)
            .copy_from_slice(out.rows_slice(rows));
        let tally = score(&self.net, out, &self.targets, &mut self.deltas[l], rows);
        self.rule.prepare(&self.net);
        let rule = &self.rule;
        hidden_deltas(
            &self.net,
            &mut self.acts,
            &mut self.deltas,
            &self.targets,
            rows,
            |p| rule.error_path(p),
        );
        tally
    }

    /// Backpropagation's hidden errors for the batch of the last forward
    /// pass, into `deltas` (whose last entry holds the output error on
    /// entry): what the alignment probes compare a rule against.
    pub fn backprop_into(&mut self, deltas: &mut [Matrix], rows: usize) {
        self.with_compute(|t| {
            hidden_deltas(&t.net, &mut t.acts, deltas, &t.targets, rows, |_| {
                crate::rules::ErrorPath::Weights
            })
        })
    }

    /// One training step on the loaded batch of `rows` samples. A batch
    /// whose loss is not finite (outputs NaN or infinite: the weights have
    /// diverged) updates nothing and is an [`Error::NonFinite`]: no metric
    /// is computed from such outputs. The check is of the batch's summed
    /// loss, which any non-finite output makes non-finite, so it costs one
    /// comparison.
    pub fn step(&mut self, rows: usize) -> Result<Tally> {
        let tally = self.with_compute(|t| t.step_here(rows));
        if tally.loss.is_finite() {
            return Ok(tally);
        }
        Err(Error::NonFinite {
            what: format!(
                "training diverged at step {}: the batch's loss is {} (the network's outputs are \
                 not finite numbers), and nothing was updated; lower the learning rate",
                self.steps() + 1,
                tally.loss
            ),
            loss: tally.loss,
        })
    }

    /// The step; one whose loss is not finite stops before the update.
    fn step_here(&mut self, rows: usize) -> Tally {
        let tally = self.compute_errors_here(rows);
        if !tally.loss.is_finite() {
            return tally;
        }
        self.updater
            .apply(&mut self.net, &mut self.acts, &self.deltas, rows);
        self.rule.train_feedback(&FeedbackStep {
            net: &self.net,
            acts: &self.acts,
            deltas: &self.deltas,
            targets: &self.targets,
            logits: &self.logits,
            rows,
        });
        tally
    }

    /// Loss and error of the network on `ds`, in chunks, without training;
    /// outputs that are not finite are an [`Error::NonFinite`].
    pub fn evaluate(&mut self, ds: &Dataset) -> Result<Tally> {
        self.with_compute(|t| t.evaluate_here(ds))
    }

    fn evaluate_here(&mut self, ds: &Dataset) -> Result<Tally> {
        self.evaluate_slices_here(ds.inputs.as_slice(), &ds.labels)
    }

    /// Loss and error on samples given as row-major `inputs` (one row per
    /// label) and their class `labels`, in chunks, without training. Inputs
    /// that are not finite are an [`Error::BadInput`] naming the first bad
    /// row, sizes that do not fit an [`Error::Mismatch`], outputs that are
    /// not finite an [`Error::NonFinite`] (never an error rate computed from
    /// them).
    pub fn evaluate_slices(&mut self, inputs: &[f32], labels: &[u8]) -> Result<Tally> {
        check_finite("inputs", inputs, self.net.inputs())?;
        self.with_compute(|t| t.evaluate_slices_here(inputs, labels))
    }

    /// The network's outputs (after the output function: probabilities for
    /// sigmoid and softmax outputs) for row-major `inputs`, into `out`
    /// (`rows x classes`), in chunks. Inputs that are not finite are an
    /// [`Error::BadInput`], outputs that are not an [`Error::NonFinite`],
    /// sizes that do not fit an [`Error::Mismatch`].
    pub fn predict_into(&mut self, inputs: &[f32], out: &mut [f32]) -> Result<()> {
        let (d, c) = (self.net.inputs(), self.net.outputs());
        let n = inputs.len() / d;
        if !inputs.len().is_multiple_of(d) || out.len() != n * c {
            return Err(Error::Mismatch(format!(
                "predict: {} inputs are not whole rows of {d}, or the output is not {n} x {c}",
                inputs.len()
            )));
        }
        check_finite("inputs", inputs, d)?;
        self.with_compute(|t| {
            let mut start = 0;
            while start < n {
                let rows = EVAL_ROWS.min(n - start);
                t.eval_acts[0]
                    .rows_slice_mut(rows)
                    .copy_from_slice(&inputs[start * d..(start + rows) * d]);
                if let Some(s) = &t.standardize {
                    s.apply(t.eval_acts[0].rows_slice_mut(rows));
                }
                t.net.forward(&mut t.eval_acts, rows);
                let o = t.eval_acts.output_mut();
                // The output function, as scoring applies it (its error is not used).
                t.eval_targets.rows_slice_mut(rows).fill(0.0);
                t.net.output.forward_error_with(
                    o.rows_slice_mut(rows),
                    t.eval_targets.rows_slice(rows),
                    t.eval_err.rows_slice_mut(rows),
                    c,
                    false,
                );
                if let Some((r, _, v)) = first_non_finite(o.rows_slice(rows), c) {
                    return Err(non_finite_outputs(start + r, v as f64));
                }
                out[start * c..(start + rows) * c].copy_from_slice(o.rows_slice(rows));
                start += rows;
            }
            Ok(())
        })
    }

    fn evaluate_slices_here(&mut self, inputs: &[f32], labels: &[u8]) -> Result<Tally> {
        let (d, c) = (self.net.inputs(), self.net.outputs());
        if inputs.len() != labels.len() * d {
            return Err(Error::Mismatch(format!(
                "evaluate: expected {} x {d} inputs, got {} values",
                labels.len(),
                inputs.len()
            )));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= c) {
            return Err(Error::Mismatch(format!(
                "evaluate: label {l} of sample {i} is not below the {c} outputs"
            )));
        }
        let mut total = Tally::default();
        let mut start = 0;
        while start < labels.len() {
            let rows = EVAL_ROWS.min(labels.len() - start);
            self.eval_acts[0]
                .rows_slice_mut(rows)
                .copy_from_slice(&inputs[start * d..(start + rows) * d]);
            if let Some(s) = &self.standardize {
                s.apply(self.eval_acts[0].rows_slice_mut(rows));
            }
            let t = self.eval_targets.rows_slice_mut(rows);
            t.fill(0.0);
            for (r, &label) in labels[start..start + rows].iter().enumerate() {
                t[r * c + label as usize] = 1.0;
            }
            self.net.forward(&mut self.eval_acts, rows);
            let out = self.eval_acts.output_mut();
            let chunk = score(&self.net, out, &self.eval_targets, &mut self.eval_err, rows);
            // A non-finite output makes the chunk's loss non-finite: one
            // comparison stands for a scan of the outputs.
            if !chunk.loss.is_finite() {
                let (r, v) = first_non_finite(out.rows_slice(rows), c)
                    .map_or((0, chunk.loss), |(r, _, v)| (r, v as f64));
                return Err(non_finite_outputs(start + r, v));
            }
            total.add(chunk);
            start += rows;
        }
        Ok(total)
    }

    /// One pass over `ds` in the order `order`, in batches of `batch`;
    /// `on_batch` is called after every step with the samples done so far.
    pub fn train_epoch(
        &mut self,
        ds: &Dataset,
        order: &[usize],
        batch: usize,
        mut on_batch: impl FnMut(usize) + Send,
    ) -> Tally {
        self.train_epoch_until(ds, order, batch, |n| {
            on_batch(n);
            true
        })
    }

    /// [`Trainer::train_epoch`], stopped between batches as soon as
    /// `on_batch` returns false (an interrupt); the tally covers the batches
    /// trained.
    pub fn train_epoch_until(
        &mut self,
        ds: &Dataset,
        order: &[usize],
        batch: usize,
        mut on_batch: impl FnMut(usize) -> bool + Send,
    ) -> Tally {
        self.with_compute(|t| {
            let mut total = Tally::default();
            for chunk in order.chunks(batch) {
                t.load_batch(ds, chunk);
                t.augment_loaded(chunk);
                let step = t.step_here(chunk.len());
                total.add(step);
                // A diverged step updated nothing; the epoch's loss is now
                // not finite, which the caller reports (no later step runs
                // on the same weights to no purpose).
                if !step.loss.is_finite() || !on_batch(total.samples) {
                    break;
                }
            }
            total
        })
    }
}

/// The first value of `values` (rows of `cols`) that is NaN or infinite, as
/// `(row, column, value)`. The scan that finds none, the common case, runs
/// over the bits in wide chunks (it vectorizes), then stops early.
pub fn first_non_finite(values: &[f32], cols: usize) -> Option<(usize, usize, f32)> {
    const EXP: u32 = 0x7f80_0000;
    let cols = cols.max(1);
    let chunk = values
        .chunks(256)
        .position(|c| !c.iter().fold(true, |ok, x| ok & (x.to_bits() & EXP != EXP)))?;
    let at = chunk * 256
        + values[chunk * 256..]
            .iter()
            .position(|x| !x.is_finite())
            .expect("a chunk with a non-finite value");
    Some((at / cols, at % cols, values[at]))
}

/// `Ok` when every value of `values` (rows of `cols`) is finite, else an
/// [`Error::BadInput`] naming `what`'s first bad row: where outside values
/// enter the library.
pub fn check_finite(what: &str, values: &[f32], cols: usize) -> Result<()> {
    match first_non_finite(values, cols) {
        None => Ok(()),
        Some((row, col, v)) => Err(Error::BadInput(format!(
            "{what}: row {row} holds {v} (column {col}); values must be finite numbers"
        ))),
    }
}

/// The error of outputs that are not finite, at sample `row`.
fn non_finite_outputs(row: usize, value: f64) -> Error {
    Error::NonFinite {
        what: format!(
            "the network's outputs are not finite numbers (sample {row}: {value}): its weights \
             have diverged, and no loss or error is computed from such outputs"
        ),
        loss: value,
    }
}

/// Turns the output pre-activations in `out` into outputs, writes the output
/// error into `err`, and counts loss and misclassified samples against the
/// one-hot `targets`, over `rows` rows.
fn score(
    net: &Network,
    out: &mut Matrix,
    targets: &Matrix,
    err: &mut Matrix,
    rows: usize,
) -> Tally {
    let c = net.outputs();
    let loss = net.output.forward_error(
        out.rows_slice_mut(rows),
        targets.rows_slice(rows),
        err.rows_slice_mut(rows),
        c,
    );
    let errors = argmax_rows(out.rows_slice(rows), c)
        .zip(argmax_rows(targets.rows_slice(rows), c))
        .filter(|(p, t)| p != t)
        .count();
    Tally {
        loss,
        errors,
        samples: rows,
    }
}
