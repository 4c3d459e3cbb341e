//! Experiments: sweeps over a grid of runs, reports laid out like the
//! paper's tables, and plots.

pub mod biotorch;
pub mod compare;
pub mod paper;
pub mod plot;
pub mod report;
pub mod results;
pub mod slurm;
pub mod sweep;
