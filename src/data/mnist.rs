//! MNIST and every data set that ships as MNIST's four IDX files.

use super::dataset::Dataset;
use super::download::{sha256_hex, MNIST_FILES};
use super::idx::{parse_idx, read_maybe_gz, IdxArray};
use crate::error::{Error, Result};
use crate::tensor::Matrix;
use std::path::{Path, PathBuf};

/// The four files, by their canonical names (without `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Finds `name` or `name.gz` in `dir` or `dir/mnist`.
pub fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    for folder in [dir.to_path_buf(), dir.join("mnist")] {
        for candidate in [folder.join(name), folder.join(format!("{name}.gz"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(Error::Missing(format!(
        "{name} (or {name}.gz) not found in {} nor in {}",
        dir.display(),
        dir.join("mnist").display()
    )))
}

/// Reads one IDX file, checking the sha256 of its decompressed bytes when
/// `verify` and the name is one of MNIST's.
fn read(dir: &Path, name: &str, verify: bool) -> Result<(PathBuf, IdxArray)> {
    let path = find(dir, name)?;
    let bytes = read_maybe_gz(&path)?;
    if verify {
        if let Some(f) = MNIST_FILES.iter().find(|f| f.name == name) {
            let actual = sha256_hex(&bytes);
            if actual != f.sha256 {
                return Err(Error::Checksum {
                    path,
                    algo: "sha256 (decompressed)",
                    expected: f.sha256.into(),
                    actual,
                });
            }
        }
    }
    let arr = parse_idx(&bytes, &path)?;
    Ok((path, arr))
}

/// The sample count and image shape `(channels, height, width)` of an
/// image file's dimensions: `[n, channels, height, width]` (channel-planar,
/// as PyTorch's NCHW), `[n, height, width]` (one channel, as MNIST's), or
/// `[n, features]` (rows that are not images).
fn image_shape(path: &Path, dims: &[usize]) -> Result<(usize, (usize, usize, usize))> {
    match *dims {
        [n, c, h, w] => Ok((n, (c, h, w))),
        [n, h, w] => Ok((n, (1, h, w))),
        [n, d] => Ok((n, (1, 1, d))),
        _ => Err(Error::format(
            path,
            format!(
                "expected images of dimensions [n, channels, height, width], [n, height, width] or [n, features], found {dims:?}"
            ),
        )),
    }
}

/// Pairs an image file and a label file into a data set, checking that the
/// images are `n x c x h x w`, `n x h x w` or `n x d`, the labels `n`, and
/// every label `< classes`.
pub fn pair(
    (ipath, images): (PathBuf, IdxArray),
    (lpath, labels): (PathBuf, IdxArray),
    classes: usize,
) -> Result<Dataset> {
    let (n, image) = image_shape(&ipath, &images.dims)?;
    let (c, h, w) = image;
    if labels.dims.len() != 1 {
        return Err(Error::format(
            &lpath,
            format!("expected labels of dimensions [n], found {:?}", labels.dims),
        ));
    }
    if labels.dims[0] != n {
        return Err(Error::format(
            &lpath,
            format!(
                "{} labels for {n} images in {}",
                labels.dims[0],
                ipath.display()
            ),
        ));
    }
    if n == 0 || c * h * w == 0 {
        return Err(Error::format(&ipath, "the file holds no samples"));
    }
    if let Some((i, &l)) = labels
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(Error::format(
            &lpath,
            format!("label {l} of sample {i} is out of range: expected 0..{classes}"),
        ));
    }
    let inputs = images.data.iter().map(|&p| p as f32 / 255.0).collect();
    Ok(Dataset {
        inputs: Matrix::from_vec(n, c * h * w, inputs).expect("checked shape"),
        labels: labels.data,
        classes,
        image,
    })
}

/// The dimensions in the header of the IDX file `path` (raw or gzip),
/// reading only the header.
fn header_dims(path: &Path) -> Result<Vec<usize>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut raw = std::io::BufReader::new(file);
    // Compression is told by content, as the loader tells it.
    let gz = std::io::BufRead::fill_buf(&mut raw)
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let bad = |msg: String| Error::format(path, msg);
    let mut head = [0u8; 4];
    reader
        .read_exact(&mut head)
        .map_err(|e| bad(format!("not an IDX file: {e}")))?;
    if head[..2] != [0, 0] || head[2] != 0x08 {
        return Err(bad("not an IDX file of unsigned bytes".into()));
    }
    let mut dims = vec![0u8; 4 * head[3] as usize];
    reader
        .read_exact(&mut dims)
        .map_err(|e| bad(format!("a truncated IDX header: {e}")))?;
    Ok(dims
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect())
}

/// The number of training and test samples in `dir` (or `dir/mnist`) and
/// their image shape `(c, h, w)`, from the image files' headers alone: what
/// a run's memory and compute are estimated from before it loads anything.
pub fn peek_dir(dir: &Path) -> Result<(usize, usize, (usize, usize, usize))> {
    let image = |name: &str| -> Result<(usize, (usize, usize, usize))> {
        let path = find(dir, name)?;
        image_shape(&path, &header_dims(&path)?)
    };
    let (train, shape) = image(TRAIN_IMAGES)?;
    let (test, _) = image(TEST_IMAGES)?;
    Ok((train, test, shape))
}

/// Loads the training and test sets from the four files in `dir` (or `dir/mnist`).
pub fn load_dir(dir: &Path, classes: usize, verify: bool) -> Result<(Dataset, Dataset)> {
    let train = pair(
        read(dir, TRAIN_IMAGES, verify)?,
        read(dir, TRAIN_LABELS, verify)?,
        classes,
    )?;
    let test = pair(
        read(dir, TEST_IMAGES, verify)?,
        read(dir, TEST_LABELS, verify)?,
        classes,
    )?;
    if train.image != test.image {
        let text = |(c, h, w): (usize, usize, usize)| format!("{c}x{h}x{w}");
        return Err(Error::Format {
            path: dir.into(),
            msg: format!(
                "training images are {} (channels x height x width), test images {}",
                text(train.image),
                text(test.image)
            ),
        });
    }
    Ok((train, test))
}
