//! Image grids: labelled tiles of network inputs or generated images, as PNG.

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// One tile of a grid: values in [0, 1], channel-planar (`c x h x w`).
#[derive(Clone, Debug)]
pub struct Tile {
    /// The caption above the tile.
    pub label: String,
    /// `c * h * w` values in [0, 1] (clamped when drawn).
    pub pixels: Vec<f32>,
}

static FONT: Once = Once::new();

/// Registers the embedded DejaVu Sans as plotters' "sans-serif", once: no
/// system fonts are needed.
pub fn register_fonts() {
    FONT.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, dejavu::sans::regular())
                .unwrap_or_else(|_| panic!("the embedded DejaVu font is valid"));
        }
    });
}

/// Writes `tiles` as a PNG grid with `cols` columns; `image` is `(c, h, w)`
/// with `c` 1 (grey) or 3 (RGB planes); each pixel becomes `scale x scale`.
pub fn write_grid(
    path: &Path,
    tiles: &[Tile],
    image: (usize, usize, usize),
    cols: usize,
    scale: u32,
) -> Result<()> {
    let (c, h, w) = image;
    if c != 1 && c != 3 {
        return Err(Error::Config(format!(
            "cannot draw images with {c} channels"
        )));
    }
    if let Some(t) = tiles.iter().find(|t| t.pixels.len() != c * h * w) {
        return Err(Error::Mismatch(format!(
            "tile {:?} has {} values, a {c}x{h}x{w} image needs {}",
            t.label,
            t.pixels.len(),
            c * h * w
        )));
    }
    register_fonts();
    let cols = cols.max(1).min(tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let (tw, th) = (w as u32 * scale, h as u32 * scale);
    let (pad, caption) = (8u32, 18u32);
    let width = cols as u32 * (tw + pad) + pad;
    let height = rows as u32 * (th + caption + pad) + pad;
    let draw_err = |e: String| Error::io(path, std::io::Error::other(e));
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    for (i, tile) in tiles.iter().enumerate() {
        let x0 = pad + (i % cols) as u32 * (tw + pad);
        let y0 = pad + (i / cols) as u32 * (th + caption + pad);
        root.draw(&Text::new(
            tile.label.clone(),
            (x0 as i32, y0 as i32),
            font.clone(),
        ))
        .map_err(|e| draw_err(e.to_string()))?;
        let top = y0 + caption;
        for y in 0..h {
            for x in 0..w {
                let v = |ch: usize| {
                    (tile.pixels[ch * h * w + y * w + x].clamp(0.0, 1.0) * 255.0).round() as u8
                };
                let color = if c == 1 {
                    RGBColor(v(0), v(0), v(0))
                } else {
                    RGBColor(v(0), v(1), v(2))
                };
                let px = (x0 + x as u32 * scale) as i32;
                let py = (top + y as u32 * scale) as i32;
                root.draw(&Rectangle::new(
                    [(px, py), (px + scale as i32, py + scale as i32)],
                    color.filled(),
                ))
                .map_err(|e| draw_err(e.to_string()))?;
            }
        }
    }
    root.present().map_err(|e| draw_err(e.to_string()))
}
