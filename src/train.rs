//! The training step and evaluation, over buffers allocated once.
//!
//! One step: forward pass, output error, the hidden errors along the rule's
//! error paths ([`hidden_deltas`]), the forward update ([`NetUpdater`]), then
//! the rule's feedback update. The step allocates nothing.

use crate::data::Dataset;
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

    /// Loads `rows` samples given as row-major inputs and targets as the next batch.
    ///
    /// # Panics
    /// When `rows` exceeds [`Trainer::max_rows`] or the slices do not hold
    /// `rows` inputs and targets of the network's widths.
    pub fn load_rows(&mut self, inputs: &[f32], targets: &[f32], rows: usize) {
        assert!(rows <= self.max_rows, "batch larger than the buffers");
        let (n, c) = (self.net.inputs(), self.net.outputs());
        assert_eq!(
            inputs.len(),
            rows * n,
            "load_rows: expected {rows} x {n} inputs"
        );
        assert_eq!(
            targets.len(),
            rows * c,
            "load_rows: expected {rows} x {c} targets"
        );
        self.acts[0].rows_slice_mut(rows).copy_from_slice(inputs);
        self.targets.rows_slice_mut(rows).copy_from_slice(targets);
    }

    /// Loads samples `idx` of `ds` as the next batch.
    pub fn load_batch(&mut self, ds: &Dataset, idx: &[usize]) {
        assert!(idx.len() <= self.max_rows, "batch larger than the buffers");
        ds.gather(idx, &mut self.acts[0], &mut self.targets);
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

    /// One training step on the loaded batch of `rows` samples.
    pub fn step(&mut self, rows: usize) -> Tally {
        self.with_compute(|t| t.step_here(rows))
    }

    fn step_here(&mut self, rows: usize) -> Tally {
        let tally = self.compute_errors_here(rows);
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

    /// Loss and error of the network on `ds`, in chunks, without training.
    pub fn evaluate(&mut self, ds: &Dataset) -> Tally {
        self.with_compute(|t| t.evaluate_here(ds))
    }

    fn evaluate_here(&mut self, ds: &Dataset) -> Tally {
        self.evaluate_slices_here(ds.inputs.as_slice(), &ds.labels)
    }

    /// Loss and error on samples given as row-major `inputs` (one row per
    /// label) and their class `labels`, in chunks, without training.
    ///
    /// # Panics
    /// When `inputs` does not hold one row of the network's input width per
    /// label, or a label is not below the network's output width.
    pub fn evaluate_slices(&mut self, inputs: &[f32], labels: &[u8]) -> Tally {
        self.with_compute(|t| t.evaluate_slices_here(inputs, labels))
    }

    /// The network's outputs (after the output function: probabilities for
    /// sigmoid and softmax outputs) for row-major `inputs`, into `out`
    /// (`rows x classes`), in chunks.
    ///
    /// # Panics
    /// When `inputs` or `out` are not whole rows of the network's widths,
    /// or hold different numbers of rows.
    pub fn predict_into(&mut self, inputs: &[f32], out: &mut [f32]) {
        let (d, c) = (self.net.inputs(), self.net.outputs());
        assert_eq!(inputs.len() % d, 0, "predict: inputs are not whole rows");
        let n = inputs.len() / d;
        assert_eq!(out.len(), n * c, "predict: output is not {n} x {c}");
        self.with_compute(|t| {
            let mut start = 0;
            while start < n {
                let rows = EVAL_ROWS.min(n - start);
                t.eval_acts[0]
                    .rows_slice_mut(rows)
                    .copy_from_slice(&inputs[start * d..(start + rows) * d]);
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
                out[start * c..(start + rows) * c].copy_from_slice(o.rows_slice(rows));
                start += rows;
            }
        })
    }

    fn evaluate_slices_here(&mut self, inputs: &[f32], labels: &[u8]) -> Tally {
        let (d, c) = (self.net.inputs(), self.net.outputs());
        assert_eq!(
            inputs.len(),
            labels.len() * d,
            "evaluate: expected {} x {d} inputs",
            labels.len()
        );
        assert!(
            labels.iter().all(|&l| (l as usize) < c),
            "evaluate: a label is not below {c}"
        );
        let mut total = Tally::default();
        let mut start = 0;
        while start < labels.len() {
            let rows = EVAL_ROWS.min(labels.len() - start);
            self.eval_acts[0]
                .rows_slice_mut(rows)
                .copy_from_slice(&inputs[start * d..(start + rows) * d]);
            let t = self.eval_targets.rows_slice_mut(rows);
            t.fill(0.0);
            for (r, &label) in labels[start..start + rows].iter().enumerate() {
                t[r * c + label as usize] = 1.0;
            }
            self.net.forward(&mut self.eval_acts, rows);
            let out = self.eval_acts.output_mut();
            total.add(score(
                &self.net,
                out,
                &self.eval_targets,
                &mut self.eval_err,
                rows,
            ));
            start += rows;
        }
        total
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
                total.add(t.step_here(chunk.len()));
                if !on_batch(total.samples) {
                    break;
                }
            }
            total
        })
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
