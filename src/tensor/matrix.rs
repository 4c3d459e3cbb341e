//! The matrix type: row-major `f32` buffers, allocated once and used with
//! fewer rows for a partial batch, and borrowed views of them, possibly
//! transposed, that the products take.

use faer::MatRef;

/// A dense row-major `f32` matrix.
///
/// Buffers of the training step are allocated once with the largest batch
/// size and used with fewer rows for the last, partial batch: see
/// [`Matrix::rows_view`].
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// A `rows x cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps row-major `data`; fails when its length is not `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, ShapeError> {
        if data.len() != rows * cols {
            return Err(ShapeError {
                expected: (rows, cols),
                len: data.len(),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// All elements, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// All elements, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The first `rows` rows as a contiguous slice.
    pub fn rows_slice(&self, rows: usize) -> &[f32] {
        &self.data[..rows * self.cols]
    }

    /// The first `rows` rows as a contiguous mutable slice.
    pub fn rows_slice_mut(&mut self, rows: usize) -> &mut [f32] {
        &mut self.data[..rows * self.cols]
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`, mutable.
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Element `(r, c)`.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// Sets element `(r, c)`.
    pub fn set(&mut self, r: usize, c: usize, v: f32) {
        self.data[r * self.cols + c] = v;
    }

    /// A view of the first `rows` rows.
    pub fn rows_view(&self, rows: usize) -> View<'_> {
        View {
            rows,
            cols: self.cols,
            data: self.rows_slice(rows),
            transposed: false,
        }
    }

    /// A view of the whole matrix.
    pub fn view(&self) -> View<'_> {
        self.rows_view(self.rows)
    }

    /// The transpose, as a new matrix (for setup and tests, not the hot path).
    pub fn transposed(&self) -> Matrix {
        let mut t = Matrix::zeros(self.cols, self.rows);
        self.transpose_into(&mut t);
        t
    }

    /// Writes the transpose into `dst`, which must be `cols x rows`.
    pub fn transpose_into(&self, dst: &mut Matrix) {
        assert_eq!(dst.shape(), (self.cols, self.rows), "transpose: shape");
        for (r, row) in self.data.chunks_exact(self.cols.max(1)).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                dst.data[c * self.rows + r] = v;
            }
        }
    }

    /// Copies `other` into `self`; shapes must match.
    pub fn copy_from(&mut self, other: &Matrix) {
        assert_eq!(self.shape(), other.shape(), "copy_from: shape mismatch");
        self.data.copy_from_slice(&other.data);
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: f32) {
        self.data.fill(v);
    }

    /// Gives the same elements another shape, in place: a convolution's
    /// output is one row a sample to the layers around it, and one row an
    /// output position to its own product.
    ///
    /// # Panics
    /// When `rows * cols` is not the number of elements.
    pub fn reshape(&mut self, rows: usize, cols: usize) {
        assert_eq!(rows * cols, self.data.len(), "reshape keeps the elements");
        self.rows = rows;
        self.cols = cols;
    }
}

/// A matrix whose element count does not match its shape.
#[derive(Debug, thiserror::Error)]
#[error("expected {}x{} = {} elements, got {len}", expected.0, expected.1, expected.0 * expected.1)]
pub struct ShapeError {
    /// The shape asked for.
    pub expected: (usize, usize),
    /// The number of elements given.
    pub len: usize,
}

/// A borrowed, possibly transposed, row-major matrix: an operand of [`gemm`].
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    rows: usize,
    cols: usize,
    data: &'a [f32],
    pub(super) transposed: bool,
}

impl<'a> View<'a> {
    /// A view of a row-major slice of `rows * cols` elements.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "View::new: length mismatch");
        Self {
            rows,
            cols,
            data,
            transposed: false,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Rows of the (possibly transposed) view.
    pub fn nrows(&self) -> usize {
        if self.transposed {
            self.cols
        } else {
            self.rows
        }
    }

    /// Columns of the (possibly transposed) view.
    pub fn ncols(&self) -> usize {
        if self.transposed {
            self.rows
        } else {
            self.cols
        }
    }

    pub(super) fn faer(&self) -> MatRef<'a, f32> {
        let m = MatRef::from_row_major_slice(self.data, self.rows, self.cols);
        if self.transposed {
            m.transpose()
        } else {
            m
        }
    }
}
