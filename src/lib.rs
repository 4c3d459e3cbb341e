//! # biprop
//!
//! Backpropagation and its biologically plausible alternatives, trained fast
//! and measured side by side: backpropagation (BP), feedback alignment (FA)
//! and direct feedback alignment (DFA), and the paper's bidirectional FA (BFA)
//! and bidirectional DFA (BDFA), after "Bidirectional Backpropagation" (Luo,
//! Fu, Glass 2017).
//!
//! The pieces, bottom up:
//! - [`tensor`]: row-major `f32` matrices and the only calls into the GEMM crates;
//! - [`named`]: tensors named from the structure that holds them;
//! - [`activation`], [`loss`]: hidden nonlinearities, output layers and losses;
//! - [`optim`]: SGD and Adam over groups of tensors;
//! - [`layers`], [`network`]: the layer kinds, and a network as a sequence of them;
//! - [`rules`]: one learning rule per file behind [`rules::LearningRule`], and
//!   the shared driver that walks the layers with each rule's error paths;
//! - [`update`], [`train`]: the forward update and the allocation-free training step;
//! - [`data`]: IDX (MNIST) and CIFAR-10 readers, splits, checksummed downloads;
//! - [`checkpoint`], [`state`]: named tensors on disk, and what a run stores there;
//! - [`config`], [`run`]: every setting of a run, and a whole run with its files;
//! - [`resources`]: a run's memory and FLOPs from its settings alone, and the
//!   refusal of a run that cannot fit, before anything is allocated;
//! - [`generate`], [`images`]: what BFA's feedback network generates (Figure 6);
//! - [`metrics`]: alignment angles with backpropagation (the paper's section 4.3);
//! - [`experiment`]: sweeps, reports laid out like the paper's tables, plots;
//! - [`bench`](mod@bench): throughput against the machine's FMA and GEMM peaks;
//! - [`cli`]: the command line, one module per subcommand.
//!
//! docs/architecture.md draws the module graph and says where a new layer
//! kind and a new rule go.
//!
//! ```no_run
//! use biprop::{config::RunConfig, run};
//! let cfg = RunConfig { epochs: 2, ..Default::default() };
//! let splits = run::load_data(&cfg)?;
//! let summary = run::run(&cfg, &splits, &run::RunOptions::default())?;
//! println!("test error {:.2}%", 100.0 * summary.records[1].test_error);
//! # Ok::<(), biprop::Error>(())
//! ```

pub mod activation;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fsutil;
pub mod generate;
pub mod images;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod named;
pub mod network;
pub mod optim;
pub mod resources;
pub mod rules;
pub mod run;
pub mod state;
pub mod stats;
pub mod tensor;
pub mod train;
pub mod update;

pub use error::{Error, Result};
