//! `biprop generate`: what a BFA feedback network generates (the paper's Figure 6).

use crate::run;
use crate::run::InitFrom;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub(super) struct GenerateArgs {
    /// A run directory or a checkpoint file of a BFA run.
    run: PathBuf,
    /// The PNG to write (default: RUN/generated.png, or RUN/reconstructions.png).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Label mixtures to render instead of the one-hot vectors, e.g. --mix 3:0.5,8:0.5 (repeatable).
    #[arg(long, value_name = "CLASS:WEIGHT,...", conflicts_with = "reconstruct")]
    mix: Vec<String>,
    /// Render the first N test images beside feedback(forward(x)) instead (N >= 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    reconstruct: Option<u32>,
    /// Data folder for --reconstruct (default: the run's, or $BIPROP_DATA).
    #[arg(long, value_name = "DIR", requires = "reconstruct")]
    data_dir: Option<PathBuf>,
    /// Screen pixels per image pixel (1 to 32).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    scale: u32,
}

pub(super) fn generate(args: GenerateArgs) -> Result<()> {
    use crate::checkpoint::Checkpoint;
    use crate::generate::{self as g, LabelMix};
    use crate::state::CheckpointExt;
    let (dir, ckpt) = if args.run.is_dir() {
        (args.run.clone(), args.run.join("checkpoint.safetensors"))
    } else {
        let dir = args
            .run
            .parent()
            .map_or(PathBuf::from("."), Path::to_path_buf);
        (dir, args.run.clone())
    };
    let ck = Checkpoint::load(&ckpt)?;
    let mut cfg = ck.config()?;
    let (image, classes) = ck.io_shape()?;
    let shape = crate::layers::Shape::new(image.0, image.1, image.2);
    let trainer = run::build_trainer_sized(
        &cfg,
        shape,
        classes,
        Some(&InitFrom::Everything(ckpt.clone())),
        ck.standardize(&cfg, shape)?,
    )?;
    let Some(feedback) = trainer.rule.feedback_network() else {
        bail!(
            "{} was trained with --rule {}: only BFA has a feedback network that generates images",
            ckpt.display(),
            cfg.rule
        );
    };
    let (tiles, default_name, cols) = match args.reconstruct {
        Some(n) => {
            if args.data_dir.is_some() {
                cfg.data_dir = args.data_dir.clone();
            }
            let (_, test) = crate::data::load(cfg.dataset, cfg.data_dir.as_deref(), cfg.classes)
                .context("loading the test images to reconstruct")?;
            let n = n as usize;
            if n > test.len() {
                bail!(
                    "--reconstruct {n}: the data set has {} test images",
                    test.len()
                );
            }
            let mut sub = test.slice(0..n);
            if let Some(s) = trainer.standardize() {
                s.apply(sub.inputs.as_mut_slice());
            }
            (
                g::reconstruct(&trainer.net, feedback, &sub.inputs, &sub.labels)
                    .context("--reconstruct")?,
                "reconstructions.png",
                10,
            )
        }
        None => {
            let mixes = if args.mix.is_empty() {
                (0..classes)
                    .map(|k| LabelMix::one_hot(k, classes, &cfg.dataset.class_name(k)))
                    .collect()
            } else {
                args.mix
                    .iter()
                    .map(|m| LabelMix::parse(m, classes))
                    .collect::<crate::Result<Vec<_>>>()?
            };
            (g::generate(feedback, &mixes)?, "generated.png", 10)
        }
    };
    // A standardized run generates standardized images: back to pixels.
    let mut tiles = tiles;
    if let Some(s) = trainer.standardize() {
        for t in &mut tiles {
            s.invert(&mut t.pixels);
        }
    }
    let out = args.out.unwrap_or_else(|| dir.join(default_name));
    crate::images::write_grid(&out, &tiles, image, cols, args.scale)?;
    say!("wrote {}", out.display());
    Ok(())
}
