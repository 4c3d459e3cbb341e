//! Training-set augmentation as the CIFAR-10 benchmarks use it (biotorch's
//! `cifar10_benchmark`, and the ResNet paper's protocol before it): a random
//! horizontal flip, then a random 32x32 crop of the image zero-padded by 4
//! on every side. Only training batches are augmented; validation and test
//! images are seen as they are.
//!
//! Each sample's draw depends on (seed, epoch, sample index) alone, hashed,
//! not on a generator's state: a resumed run, any thread count and any
//! batch size see the same images.

use serde::{Deserialize, Serialize};

/// Which augmentation a run's training batches get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// None: every image as it is.
    #[default]
    None,
    /// A horizontal flip with probability 1/2.
    Flip,
    /// A crop of the image padded by [`CROP_PADDING`] zeros on every side,
    /// at a uniform random offset: a shift by -4..=4 pixels in each direction.
    Crop,
    /// A flip, then a crop (biotorch's CIFAR-10 benchmark).
    FlipCrop,
}

/// The zero padding of [`Augment::Crop`], on every side.
pub const CROP_PADDING: usize = 4;

/// One sample's draw: whether it is flipped, and its shift `(dy, dx)`:
/// output pixel `(y, x)` is the (flipped) input's `(y + dy, x + dx)`, zero
/// outside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    /// Mirrored left to right.
    pub flip: bool,
    /// Rows shifted.
    pub dy: isize,
    /// Columns shifted.
    pub dx: isize,
}

/// SplitMix64's finalizer: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Augment {
    /// The draw of training sample `sample` (its index in the training set)
    /// in `epoch` of a run seeded `seed`.
    pub fn draw(self, seed: u64, epoch: usize, sample: usize) -> Draw {
        let r = mix(mix(mix(seed) ^ epoch as u64) ^ sample as u64);
        let side = 2 * CROP_PADDING as u64 + 1;
        let shift = |bits: u64| (bits % side) as isize - CROP_PADDING as isize;
        let (flip, crop) = match self {
            Augment::None => (false, false),
            Augment::Flip => (true, false),
            Augment::Crop => (false, true),
            Augment::FlipCrop => (true, true),
        };
        Draw {
            flip: flip && r & 1 == 1,
            dy: if crop { shift(r >> 8) } else { 0 },
            dx: if crop { shift(r >> 32) } else { 0 },
        }
    }
}

/// Applies `d` to one channel-planar image `x` of `(c, h, w)`, in place;
/// `scratch` holds a copy of it (one image long). Pixels shifted in from
/// outside the image take channel `ch`'s `fill[ch]`: 0 for raw pixels, or
/// what 0 becomes under standardization
/// ([`crate::data::Standardize::zero`]), so that padding means the same
/// either way.
pub fn apply(
    d: Draw,
    (c, h, w): (usize, usize, usize),
    x: &mut [f32],
    scratch: &mut [f32],
    fill: &[f32],
) {
    if d == (Draw {
        flip: false,
        dy: 0,
        dx: 0,
    }) {
        return;
    }
    let src = &mut scratch[..c * h * w];
    src.copy_from_slice(&x[..c * h * w]);
    assert_eq!(fill.len(), c, "one fill value per channel");
    for (ch, &pad) in fill.iter().enumerate() {
        for y in 0..h {
            let row = &mut x[(ch * h + y) * w..(ch * h + y + 1) * w];
            let sy = y as isize + d.dy;
            if !(0..h as isize).contains(&sy) {
                row.fill(pad);
                continue;
            }
            let from = &src[(ch * h + sy as usize) * w..(ch * h + sy as usize + 1) * w];
            for (x, out) in row.iter_mut().enumerate() {
                let sx = x as isize + d.dx;
                *out = if (0..w as isize).contains(&sx) {
                    let sx = sx as usize;
                    from[if d.flip { w - 1 - sx } else { sx }]
                } else {
                    pad
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, literally: flip, pad by 4 zeros on every side, cut
    /// the window at offset (dy + 4, dx + 4).
    fn reference(d: Draw, (c, h, w): (usize, usize, usize), x: &[f32], fill: &[f32]) -> Vec<f32> {
        let p = CROP_PADDING;
        let (ph, pw) = (h + 2 * p, w + 2 * p);
        let mut padded: Vec<f32> = (0..c * ph * pw).map(|i| fill[i / (ph * pw)]).collect();
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    let from = if d.flip { w - 1 - xx } else { xx };
                    padded[(ch * ph + y + p) * pw + xx + p] = x[(ch * h + y) * w + from];
                }
            }
        }
        let (oy, ox) = ((d.dy + p as isize) as usize, (d.dx + p as isize) as usize);
        let mut out = vec![0.0; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    out[(ch * h + y) * w + xx] = padded[(ch * ph + y + oy) * pw + xx + ox];
                }
            }
        }
        out
    }

    #[test]
    fn every_shift_and_flip_is_the_padded_crop() {
        // Odd sizes, one smaller than the padding.
        for image in [(3, 7, 5), (1, 3, 9), (2, 32, 32)] {
            let n = image.0 * image.1 * image.2;
            let x: Vec<f32> = (0..n).map(|i| 1.0 + i as f32).collect();
            let mut scratch = vec![0.0; n];
            let fill: Vec<f32> = (0..image.0).map(|ch| -0.5 - ch as f32).collect();
            for flip in [false, true] {
                for dy in -4..=4 {
                    for dx in -4..=4 {
                        let d = Draw { flip, dy, dx };
                        let mut got = x.clone();
                        apply(d, image, &mut got, &mut scratch, &fill);
                        assert_eq!(got, reference(d, image, &x, &fill), "{image:?} {d:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn draws_cover_every_shift_and_depend_on_seed_epoch_and_sample() {
        let mut seen = std::collections::BTreeMap::new();
        for s in 0..9000 {
            let d = Augment::FlipCrop.draw(1, 1, s);
            *seen.entry((d.flip, d.dy, d.dx)).or_insert(0usize) += 1;
        }
        // 2 x 9 x 9 outcomes, each about 9000 / 162 = 55 times.
        assert_eq!(seen.len(), 162);
        assert!(seen.values().all(|&k| (25..=95).contains(&k)), "{seen:?}");
        let d = |seed, epoch, sample| Augment::FlipCrop.draw(seed, epoch, sample);
        let differs = |f: &dyn Fn(usize) -> Draw| (0..50).any(|s| f(s) != d(1, 1, s));
        assert!(differs(&|s| d(2, 1, s)));
        assert!(differs(&|s| d(1, 2, s)));
        assert_eq!(d(3, 4, 5), d(3, 4, 5));
        // Each kind draws only its part.
        for s in 0..100 {
            let f = Augment::Flip.draw(1, 1, s);
            assert_eq!((f.dy, f.dx), (0, 0));
            assert!(!Augment::Crop.draw(1, 1, s).flip);
            assert_eq!(
                Augment::None.draw(1, 1, s),
                Draw {
                    flip: false,
                    dy: 0,
                    dx: 0
                }
            );
        }
    }
}
