//! The description of a network's layers, as a user writes it:
//!
//! `conv 6 5x5 pad 2, relu, maxpool 2, conv 16 5x5, relu, maxpool 2, flatten, dense 84, dense 10`
//!
//! Items, comma-separated: `conv OUT KxK [stride S] [pad P]` (or `conv OUT K`),
//! `dense OUT`, `relu` | `tanh` | `sigmoid` (after a `conv` or `dense`),
//! `maxpool K [stride S]` | `avgpool K [stride S]` (stride K by default),
//! `flatten`. [`build`] works out every shape from the input's and names the
//! layer at fault when one does not fit.

use super::{Conv2d, Dense, Flatten, Kind, Layout, Plain, Pool, PoolKind, Shape};
use crate::activation::Activation;
use crate::data::DatasetKind;
use serde::{Deserialize, Serialize};

/// Networks by name. `lenet-mnist` and `lenet-cifar` are biotorch's LeNet
/// models as its repository had them on 2021-07-30; the `biotorch-` ones are
/// the models its published benchmark tables were run on (its repository
/// from 2021-08-13 on, and its release). The older names keep their meaning,
/// so that saved settings and checkpoints that name them still describe
/// what ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// biotorch's `le_net_mnist` of July 2021, on 28x28 inputs: biotorch
    /// resizes MNIST's digits to 32x32; here the first convolution pads them
    /// by 2 instead. No activation between the dense layers.
    LenetMnist,
    /// biotorch's `le_net_cifar` of July 2021: 32, 64 and 128 channels of
    /// 5x5 with max-pooling, then dense 84 and dense 10, with no activation
    /// between them.
    LenetCifar,
    /// biotorch's `le_net_mnist` of its benchmark tables (August 2021 on):
    /// `lenet-mnist` with a ReLU between the dense layers.
    BiotorchLenetMnist,
    /// biotorch's `le_net_cifar` of its benchmark tables (August 2021 on):
    /// 32, 64 and 128 channels of 3x3, the first two max-pooled, the last
    /// averaged over its 4x4 map, then dense 256, ReLU, dense 10.
    BiotorchLenetCifar,
}

impl Preset {
    /// Every preset (clap's list of the variants, which a new one joins by
    /// itself).
    pub fn all() -> &'static [Preset] {
        <Preset as clap::ValueEnum>::value_variants()
    }

    /// Its name in settings.
    pub fn name(self) -> &'static str {
        match self {
            Preset::LenetMnist => "lenet-mnist",
            Preset::LenetCifar => "lenet-cifar",
            Preset::BiotorchLenetMnist => "biotorch-lenet-mnist",
            Preset::BiotorchLenetCifar => "biotorch-lenet-cifar",
        }
    }

    /// The data set it was made for: MNIST or CIFAR-10.
    pub fn dataset(self) -> DatasetKind {
        match self {
            Preset::LenetMnist | Preset::BiotorchLenetMnist => DatasetKind::Mnist,
            Preset::LenetCifar | Preset::BiotorchLenetCifar => DatasetKind::Cifar10,
        }
    }

    /// The shape of its inputs (channels, height, width): the images of
    /// [`Preset::dataset`].
    pub fn image(self) -> (usize, usize, usize) {
        let (_, _, image) = self
            .dataset()
            .known_sizes()
            .expect("MNIST's and CIFAR-10's sizes are known");
        image
    }

    /// Its layers.
    pub fn description(self) -> &'static str {
        match self {
            Preset::LenetMnist => {
                "conv 6 5x5 pad 2, relu, maxpool 2, conv 16 5x5, relu, maxpool 2, \
                 conv 120 5x5, relu, flatten, dense 84, dense 10"
            }
            Preset::LenetCifar => {
                "conv 32 5x5, relu, maxpool 2, conv 64 5x5, relu, maxpool 2, \
                 conv 128 5x5, relu, flatten, dense 84, dense 10"
            }
            Preset::BiotorchLenetMnist => {
                "conv 6 5x5 pad 2, relu, maxpool 2, conv 16 5x5, relu, maxpool 2, \
                 conv 120 5x5, relu, flatten, dense 84, relu, dense 10"
            }
            Preset::BiotorchLenetCifar => {
                "conv 32 3x3, relu, maxpool 2, conv 64 3x3, relu, maxpool 2, \
                 conv 128 3x3, relu, avgpool 4, flatten, dense 256, relu, dense 10"
            }
        }
    }

    /// The preset of that name (`lenet-mnist` ...).
    pub fn named(name: &str) -> Option<Preset> {
        Preset::all().iter().copied().find(|p| p.name() == name)
    }

    /// The preset whose layers `text` describes, however it is spelled
    /// (`Conv2d 8 3` is `conv 8 3x3`), so that a network written out in full
    /// is named, and compared with published numbers, as its preset is.
    pub fn described_by(text: &str) -> Option<Preset> {
        let items = parse(text).ok()?;
        Preset::all()
            .iter()
            .copied()
            .find(|p| parse(p.description()).is_ok_and(|q| q == items))
    }
}

/// One item of a description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A convolution.
    Conv {
        /// Output channels.
        out: usize,
        /// Kernel height and width.
        kernel: (usize, usize),
        /// Stride.
        stride: usize,
        /// Zero padding.
        padding: usize,
    },
    /// A dense layer.
    Dense {
        /// Output width.
        out: usize,
    },
    /// The activation of the layer before.
    Act(Activation),
    /// Pooling.
    Pool {
        /// Max or average.
        kind: PoolKind,
        /// Window side.
        size: usize,
        /// Stride.
        stride: usize,
    },
    /// `flatten`.
    Flatten,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Item::Conv {
                out,
                kernel: (kh, kw),
                stride,
                padding,
            } => {
                write!(f, "conv {out} {kh}x{kw}")?;
                if stride != 1 {
                    write!(f, " stride {stride}")?;
                }
                if padding != 0 {
                    write!(f, " pad {padding}")?;
                }
                Ok(())
            }
            Item::Dense { out } => write!(f, "dense {out}"),
            Item::Act(a) => f.write_str(match a {
                Activation::Tanh => "tanh",
                Activation::Sigmoid => "sigmoid",
                Activation::Relu => "relu",
            }),
            Item::Pool { kind, size, stride } => {
                let name = match kind {
                    PoolKind::Max => "maxpool",
                    PoolKind::Avg => "avgpool",
                };
                write!(f, "{name} {size}")?;
                if stride != size {
                    write!(f, " stride {stride}")?;
                }
                Ok(())
            }
            Item::Flatten => f.write_str("flatten"),
        }
    }
}

/// The canonical text of a description.
pub fn describe(items: &[Item]) -> String {
    items
        .iter()
        .map(Item::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a description; an error names the item at fault.
pub fn parse(text: &str) -> Result<Vec<Item>, String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.iter().all(|p| p.is_empty()) {
        return Err("the layer description is empty".into());
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| parse_item(p).map_err(|e| format!("layer {} ({p:?}): {e}", i + 1)))
        .collect()
}

fn number(word: Option<&str>, what: &str) -> Result<usize, String> {
    let w = word.ok_or_else(|| format!("missing {what}"))?;
    match w.parse::<usize>() {
        Ok(0) => Err(format!("{what} must be at least 1, got 0")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{what} must be a whole number, got {w:?}")),
    }
}

/// The options after an item's sizes (`stride S`, `pad P`, or `stride=S`),
/// each looked up in `names`.
fn options(rest: &[&str], names: &[&str]) -> Result<Vec<Option<usize>>, String> {
    let mut found = vec![None; names.len()];
    let words: Vec<&str> = rest.iter().flat_map(|w| w.split('=')).collect();
    let mut k = 0;
    while k < words.len() {
        let key = match words[k] {
            "padding" => "pad",
            w => w,
        };
        let Some(slot) = names.iter().position(|n| *n == key) else {
            return Err(if names.is_empty() {
                format!("unexpected {:?}", words[k])
            } else {
                format!(
                    "unexpected {:?} (options here: {})",
                    words[k],
                    names.join(", ")
                )
            });
        };
        let v = words.get(k + 1).copied();
        found[slot] = Some(if key == "pad" {
            let w = v.ok_or("missing pad")?;
            w.parse::<usize>()
                .map_err(|_| format!("pad must be a whole number, got {w:?}"))?
        } else {
            number(v, key)?
        });
        k += 2;
    }
    Ok(found)
}

fn parse_item(text: &str) -> Result<Item, String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let head = *words.first().ok_or("an empty item")?;
    let arg = |k: usize| words.get(k).copied();
    match head {
        "conv" | "conv2d" => {
            let out = number(arg(1), "output channels")?;
            let k = arg(2).ok_or("missing kernel size (e.g. 5x5)")?;
            let kernel = match k.split_once('x') {
                Some((h, w)) => (
                    number(Some(h), "kernel height")?,
                    number(Some(w), "kernel width")?,
                ),
                None => {
                    let s = number(Some(k), "kernel size")?;
                    (s, s)
                }
            };
            let o = options(&words[3..], &["stride", "pad"])?;
            Ok(Item::Conv {
                out,
                kernel,
                stride: o[0].unwrap_or(1),
                padding: o[1].unwrap_or(0),
            })
        }
        "dense" | "linear" | "fc" => {
            let out = number(arg(1), "output width")?;
            options(&words[2..], &[])?;
            Ok(Item::Dense { out })
        }
        "relu" | "tanh" | "sigmoid" => {
            options(&words[1..], &[])?;
            Ok(Item::Act(match head {
                "relu" => Activation::Relu,
                "tanh" => Activation::Tanh,
                _ => Activation::Sigmoid,
            }))
        }
        "maxpool" | "avgpool" | "maxpool2d" | "avgpool2d" => {
            let size = number(arg(1), "window size")?;
            let o = options(&words[2.min(words.len())..], &["stride"])?;
            Ok(Item::Pool {
                kind: if head.starts_with("max") {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                },
                size,
                stride: o[0].unwrap_or(size),
            })
        }
        "flatten" => {
            options(&words[1..], &[])?;
            Ok(Item::Flatten)
        }
        other => Err(format!(
            "unknown layer {other:?} (known: conv, dense, relu, tanh, sigmoid, maxpool, avgpool, flatten)"
        )),
    }
}

/// A parametric layer as [`build`] makes it: kind, activation, and the
/// layers without weights that run before it.
pub type Planned = (Kind, Option<Activation>, Vec<Plain>);

/// Works out the layers of `items` on inputs of `input` (channel-planar).
/// The last item must be a `conv` or `dense` layer without activation (its
/// output goes to the loss).
pub fn build(input: Shape, items: &[Item]) -> Result<Vec<Planned>, String> {
    let mut out: Vec<Planned> = Vec::new();
    let mut pending: Vec<Plain> = Vec::new();
    let (mut shape, mut layout) = (input, Layout::Chw);
    let mut last_param: Option<usize> = None;
    for (i, item) in items.iter().enumerate() {
        let at = |e: String| format!("layer {} ({item}): {e}", i + 1);
        match *item {
            Item::Conv {
                out: channels,
                kernel,
                stride,
                padding,
            } => {
                let g = Conv2d {
                    input: shape,
                    layout,
                    out_channels: channels,
                    kernel,
                    stride,
                    padding,
                };
                g.check().map_err(at)?;
                out.push((Kind::Conv2d(g), None, std::mem::take(&mut pending)));
                (shape, layout) = (g.output(), Layout::Hwc);
                last_param = Some(i);
            }
            Item::Dense { out: width } => {
                if shape.is_spatial() && layout == Layout::Hwc {
                    return Err(at(format!(
                        "its input is a {shape} feature map; put `flatten` before it"
                    )));
                }
                let d = Dense {
                    inputs: shape.len(),
                    outputs: width,
                };
                out.push((Kind::Dense(d), None, std::mem::take(&mut pending)));
                (shape, layout) = (Shape::flat(width), Layout::Chw);
                last_param = Some(i);
            }
            Item::Act(a) => {
                let follows = last_param == i.checked_sub(1) && pending.is_empty();
                match out.last_mut() {
                    Some((_, act @ None, _)) if follows => *act = Some(a),
                    _ => {
                        return Err(at(
                            "an activation goes right after a conv or dense layer (one each)"
                                .into(),
                        ))
                    }
                }
            }
            Item::Pool { kind, size, stride } => {
                let p = Pool {
                    kind,
                    input: shape,
                    layout,
                    size,
                    stride,
                };
                p.check().map_err(at)?;
                pending.push(Plain::Pool(p));
                shape = p.output();
            }
            Item::Flatten => {
                let f = Flatten {
                    input: shape,
                    layout,
                };
                pending.push(Plain::Flatten(f));
                (shape, layout) = (f.output(), Layout::Chw);
            }
        }
    }
    if !pending.is_empty() || out.is_empty() {
        return Err("the network must end with a conv or dense layer (its outputs)".into());
    }
    if let Some((_, Some(_), _)) = out.last() {
        return Err(
            "the last layer's outputs go to the loss (--output), which applies its own \
             nonlinearity: remove the activation after it"
                .into(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_parse_and_print_back() {
        let text = "conv 6 5x5 pad 2, relu, maxpool 2, conv 16 5x5 stride 2, relu, avgpool 3 stride 2, flatten, dense 84, tanh, dense 10";
        let items = parse(text).unwrap();
        assert_eq!(describe(&items), text);
        assert_eq!(parse(&describe(&items)).unwrap(), items);
        assert_eq!(
            parse("Conv2d 8 3 stride=2 padding=1").unwrap(),
            parse("conv 8 3x3 stride 2 pad 1").unwrap()
        );
    }

    #[test]
    fn every_preset_is_found_from_its_layers_however_written() {
        for &p in Preset::all() {
            assert_eq!(Preset::described_by(p.description()), Some(p), "{p:?}");
            assert_eq!(Preset::named(p.name()), Some(p));
            let loose = p.description().replace(", ", " ,  ").replace("5x5", "5");
            assert_eq!(Preset::described_by(&loose), Some(p), "{loose}");
            let serialized = toml::to_string(&std::collections::BTreeMap::from([("net", p)]));
            assert_eq!(
                serialized.unwrap().trim(),
                format!("net = \"{}\"", p.name())
            );
        }
        for &p in Preset::all() {
            let (c, h, w) = p.image();
            let plan = build(Shape::new(c, h, w), &parse(p.description()).unwrap());
            let plan = plan.unwrap_or_else(|e| panic!("{p:?}: {e}"));
            assert_eq!(plan.last().unwrap().0.out_shape(), Shape::flat(10), "{p:?}");
        }
        // One layer more or less is another network.
        let cifar = Preset::BiotorchLenetCifar.description();
        assert_eq!(
            Preset::described_by(&cifar.replace("dense 256, relu", "dense 256")),
            None
        );
        assert_eq!(Preset::described_by("dense 10"), None);
        assert_eq!(Preset::described_by("not a network"), None);
        assert_eq!(Preset::named("conv"), None);
    }

    #[test]
    fn bad_items_are_named() {
        for (text, want) in [
            ("conv 6", "layer 1 (\"conv 6\"): missing kernel"),
            ("dense 84, conv x 3", "layer 2"),
            ("dense 0", "at least 1"),
            ("pool 2", "unknown layer \"pool\""),
            ("conv 4 3x3 dilation 2", "unexpected \"dilation\""),
            ("", "empty"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn shapes_follow_through_lenet() {
        let items = parse(
            "conv 6 5x5 pad 2, relu, maxpool 2, conv 16 5x5, relu, maxpool 2, \
             conv 120 5x5, relu, flatten, dense 84, dense 10",
        )
        .unwrap();
        let layers = build(Shape::new(1, 28, 28), &items).unwrap();
        let outs: Vec<Shape> = layers.iter().map(|(k, ..)| k.out_shape()).collect();
        assert_eq!(
            outs,
            [
                Shape::new(6, 28, 28),
                Shape::new(16, 10, 10),
                Shape::new(120, 1, 1),
                Shape::flat(84),
                Shape::flat(10)
            ]
        );
        assert_eq!(layers[1].2.len(), 1, "the pool runs before conv 2");
        assert_eq!(layers[3].2.len(), 1, "flatten runs before dense 84");
        assert_eq!(layers[0].1, Some(Activation::Relu));
        assert_eq!(layers[3].1, None);
    }

    #[test]
    fn shapes_that_do_not_fit_name_the_layer() {
        let input = Shape::new(3, 32, 32);
        for (text, want) in [
            (
                "conv 6 5x5, maxpool 2, conv 8 20x20, dense 10",
                "layer 3 (conv 8 20x20)",
            ),
            (
                "conv 6 5x5, dense 10",
                "layer 2 (dense 10): its input is a 6x28x28 feature map",
            ),
            (
                "conv 6 5x5, relu, relu, flatten, dense 10",
                "layer 3 (relu)",
            ),
            ("relu, dense 10", "layer 1 (relu)"),
            ("conv 6 5x5, flatten", "must end with"),
            ("flatten, dense 10, relu", "remove the activation"),
            ("maxpool 40, flatten, dense 10", "layer 1 (maxpool 40)"),
        ] {
            let e = build(input, &parse(text).unwrap()).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
