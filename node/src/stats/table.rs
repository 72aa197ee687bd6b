//! The layout every table shares: axes of value labels, and the dense array of
//! cells *and* marginal totals over them.
//!
//! A table with dimensions of `n₁ … n_k` values is stored as an array of shape
//! `(n₁ + 1) × … × (n_k + 1)`, row-major (the last dimension varies fastest).
//! Coordinate `n_d` along dimension `d` is the total over that dimension, so
//! the array holds the cells, every row, column and higher-order marginal and
//! the grand total (at the last index). Along any dimension `d`, with the other
//! coordinates fixed, the entries at `0 … n_d − 1` are a *line* and the entry
//! at `n_d` is its marginal: for single-valued dimensions the line sums to it.

use serde::{Deserialize, Serialize};

use super::spec::{Dimension, MAX_DIMENSIONS};

/// Most entries (cells and marginals together) of a table.
pub const MAX_ENTRIES: usize = 1 << 20;

/// One dimension of a table and its values, in display order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// The dimension.
    pub dimension: Dimension,
    /// Its values, in display order (age bands youngest first, `unknown` last).
    pub values: Vec<String>,
}

impl Axis {
    /// The position of `label`, if it is a value of this axis.
    pub fn position(&self, label: &str) -> Option<usize> {
        self.values.iter().position(|v| v == label)
    }
}

/// Index arithmetic over the extended array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    lens: Vec<usize>,
    strides: Vec<usize>,
    size: usize,
}

impl Shape {
    /// The shape for axes of `lens` values; `None` above [`MAX_ENTRIES`].
    pub(crate) fn new(lens: &[usize]) -> Option<Shape> {
        if lens.len() > MAX_DIMENSIONS {
            return None;
        }
        let mut strides = vec![0; lens.len()];
        let mut size: usize = 1;
        for d in (0..lens.len()).rev() {
            strides[d] = size;
            size = size.checked_mul(lens[d].checked_add(1)?)?;
        }
        (size <= MAX_ENTRIES).then(|| Shape {
            lens: lens.to_vec(),
            strides,
            size,
        })
    }

    /// The shape of `axes`.
    pub(crate) fn of(axes: &[Axis]) -> Option<Shape> {
        let lens: Vec<usize> = axes.iter().map(|a| a.values.len()).collect();
        Shape::new(&lens)
    }

    /// Number of entries.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Number of dimensions.
    pub(crate) fn dims(&self) -> usize {
        self.lens.len()
    }

    /// Values of dimension `d`; also the coordinate of its total.
    pub(crate) fn len(&self, d: usize) -> usize {
        self.lens[d]
    }

    /// Distance between neighbours along dimension `d`.
    pub(crate) fn stride(&self, d: usize) -> usize {
        self.strides[d]
    }

    /// The index of `coords` (each at most `len(d)`).
    pub(crate) fn index(&self, coords: &[usize]) -> usize {
        coords.iter().zip(&self.strides).map(|(c, s)| c * s).sum()
    }

    /// The coordinates of `index` (unused dimensions are 0).
    pub(crate) fn coords(&self, mut index: usize) -> [usize; MAX_DIMENSIONS] {
        let mut c = [0; MAX_DIMENSIONS];
        for (x, stride) in c.iter_mut().zip(&self.strides) {
            *x = index / stride;
            index %= stride;
        }
        c
    }

    /// Every line: `(d, first)` where `first` has coordinate 0 along `d`; the
    /// line's entries are `first + i·stride(d)` for `i` in `0..=len(d)`, the
    /// last being its marginal.
    #[cfg(test)]
    pub(crate) fn lines(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.dims()).flat_map(move |d| {
            (0..self.size)
                .filter(move |&i| self.coords(i)[d] == 0)
                .map(move |i| (d, i))
        })
    }

    /// The entries of the line `(d, first)`, marginal last.
    #[cfg(test)]
    pub(crate) fn line(&self, d: usize, first: usize) -> impl Iterator<Item = usize> + '_ {
        (0..=self.lens[d]).map(move |i| first + i * self.strides[d])
    }

    /// The labels of `index`: one per dimension, `None` for a total.
    pub(crate) fn key<'a>(&self, axes: &'a [Axis], index: usize) -> Vec<Option<&'a str>> {
        let c = self.coords(index);
        axes.iter()
            .enumerate()
            .map(|(d, a)| a.values.get(c[d]).map(String::as_str))
            .collect()
    }

    /// The index of a key of labels (`None` for a total); `None` when the key
    /// has the wrong length or names a value not on an axis.
    pub(crate) fn find(&self, axes: &[Axis], key: &[Option<&str>]) -> Option<usize> {
        if key.len() != axes.len() || axes.len() != self.dims() {
            return None;
        }
        let mut coords = [0; MAX_DIMENSIONS];
        for (d, (a, k)) in axes.iter().zip(key).enumerate() {
            coords[d] = match k {
                None => self.lens[d],
                Some(label) => a.position(label)?,
            };
        }
        Some(self.index(&coords[..self.dims()]))
    }
}
