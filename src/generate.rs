//! Figure 6 of the paper: images that a trained BFA feedback network
//! generates from label vectors (one-hot, or any mixture), and
//! reconstructions of real inputs from the forward network's outputs.

use crate::error::{Error, Result};
use crate::images::Tile;
use crate::network::{argmax_rows, Network};
use crate::tensor::Matrix;

/// A label vector to feed through the feedback network, with its caption.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelMix {
    /// The caption.
    pub caption: String,
    /// `C` weights.
    pub weights: Vec<f32>,
}

impl LabelMix {
    /// The one-hot vector of class `k` of `classes`, captioned with `name`.
    pub fn one_hot(k: usize, classes: usize, name: &str) -> Self {
        let mut weights = vec![0.0; classes];
        weights[k] = 1.0;
        Self {
            caption: name.to_string(),
            weights,
        }
    }

    /// Parses `3:0.5,8:0.5` (class:weight pairs; a bare class means weight 1).
    pub fn parse(spec: &str, classes: usize) -> Result<Self> {
        let mut weights = vec![0.0; classes];
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, w) = part.split_once(':').unwrap_or((part, "1"));
            let bad = || {
                Error::Config(format!(
                    "label mixture {spec:?}: expected CLASS:WEIGHT pairs such as 3:0.5,8:0.5 with classes 0..{classes}"
                ))
            };
            let k: usize = k.trim().parse().map_err(|_| bad())?;
            let w: f32 = w.trim().parse().map_err(|_| bad())?;
            if k >= classes || !w.is_finite() {
                return Err(bad());
            }
            weights[k] += w;
        }
        if weights.iter().all(|&w| w == 0.0) {
            return Err(Error::Config(format!("label mixture {spec:?} is empty")));
        }
        Ok(Self {
            caption: spec.replace(' ', ""),
            weights,
        })
    }
}

/// The images the feedback network generates from each label vector.
pub fn generate(feedback: &Network, mixes: &[LabelMix]) -> Result<Vec<Tile>> {
    let c = feedback.inputs();
    if let Some(m) = mixes.iter().find(|m| m.weights.len() != c) {
        return Err(Error::Config(format!(
            "label vector {:?} has {} entries, the feedback network takes {c}",
            m.caption,
            m.weights.len()
        )));
    }
    let data = mixes
        .iter()
        .flat_map(|m| m.weights.iter().copied())
        .collect();
    let labels = Matrix::from_vec(mixes.len(), c, data).expect("shape checked");
    let out = feedback.infer(&labels);
    Ok(mixes
        .iter()
        .enumerate()
        .map(|(i, m)| Tile {
            label: m.caption.clone(),
            pixels: out.row(i).to_vec(),
        })
        .collect())
}

/// Originals and their reconstructions `feedback(forward(x))`, interleaved
/// (original, reconstruction, ...), captioned with label and prediction.
pub fn reconstruct(
    forward: &Network,
    feedback: &Network,
    inputs: &Matrix,
    labels: &[u8],
) -> Result<Vec<Tile>> {
    if inputs.cols() != forward.inputs() {
        return Err(Error::Mismatch(format!(
            "the images have {} values each, the network takes {}",
            inputs.cols(),
            forward.inputs()
        )));
    }
    let yhat = forward.infer(inputs);
    let xhat = feedback.infer(&yhat);
    let mut tiles = Vec::new();
    for (r, label) in labels.iter().enumerate().take(inputs.rows()) {
        let pred = argmax_rows(yhat.row(r), yhat.cols()).next().unwrap_or(0);
        tiles.push(Tile {
            label: format!("x: {label}"),
            pixels: inputs.row(r).to_vec(),
        });
        tiles.push(Tile {
            label: format!("xhat: {pred}"),
            pixels: xhat.row(r).to_vec(),
        });
    }
    Ok(tiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconstruct_rejects_images_of_another_size() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (act, out) = (
            crate::activation::Activation::Tanh,
            crate::loss::Output::SigmoidBce,
        );
        let forward = Network::mlp(&[4, 3, 2], act, out, &mut rng);
        let feedback = Network::mlp(&[2, 3, 4], act, out, &mut rng);
        let fits = reconstruct(&forward, &feedback, &Matrix::zeros(1, 4), &[0]).unwrap();
        assert_eq!(fits.len(), 2);
        let e = reconstruct(&forward, &feedback, &Matrix::zeros(1, 5), &[0]).unwrap_err();
        assert!(
            e.to_string().contains("5 values each, the network takes 4"),
            "{e}"
        );
    }

    #[test]
    fn mixtures_parse() {
        let m = LabelMix::parse("3:0.5, 8:0.5", 10).unwrap();
        assert_eq!(m.weights[3], 0.5);
        assert_eq!(m.weights[8], 0.5);
        assert_eq!(LabelMix::parse("4", 10).unwrap().weights[4], 1.0);
        for bad in ["", "10:1", "a:1", "3:x", "3:0"] {
            assert!(LabelMix::parse(bad, 10).is_err(), "{bad}");
        }
    }
}
