//! Splitting a `(tokens, heads·head_dim)` activation into attention heads and back, shared by the
//! models' attention layers.

use candle_core::Tensor;

use crate::model::Result;

/// Splits `(tokens, heads·head_dim)` into `(heads, tokens, head_dim)`, contiguous.
pub(crate) fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (n, d) = x.dims2()?;
    Ok(x.reshape((n, heads, d / heads))?.transpose(0, 1)?.contiguous()?)
}

/// Inverse of [`split_heads`].
pub(crate) fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (h, n, dh) = x.dims3()?;
    Ok(x.transpose(0, 1)?.reshape((n, h * dh))?)
}
