//! Sentence pooling: attention-masked mean over tokens, then L2 normalisation.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `hidden: [batch, seq, dim]`, `mask: [batch, seq]` (1 token, 0 padding) → `[batch, dim]`,
/// the mean of the unmasked token vectors.
pub fn mean_pool<B: Backend>(hidden: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, seq, dim] = hidden.dims();
    let mask = mask.reshape([batch, seq, 1]);
    let summed = (hidden * mask.clone()).sum_dim(1).reshape([batch, dim]);
    // At least one token ([CLS], [SEP]) is always present; the clamp only guards the
    // arithmetic, as sentence-transformers does.
    let counts = mask.sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
    summed / counts
}

/// `x: [batch, dim]` → each row divided by its L2 norm (rows of zeros stay zero).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norms = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norms
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    #[test]
    fn mean_pooling_ignores_padding() {
        let device = Default::default();
        // One sequence of two real tokens and one padding token.
        let hidden = Tensor::<B, 3>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 100.0, 100.0], [1, 3, 2]),
            &device,
        );
        let mask =
            Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 1.0, 0.0], [1, 3]), &device);
        let pooled = mean_pool(hidden, mask).into_data().to_vec::<f32>().unwrap();
        assert_eq!(pooled, vec![2.0, 3.0]);
    }

    #[test]
    fn normalised_rows_have_unit_length() {
        let device = Default::default();
        let x = Tensor::<B, 2>::from_data(
            TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]),
            &device,
        );
        let y = l2_normalize(x).into_data().to_vec::<f32>().unwrap();
        assert_eq!(y, vec![0.6, 0.8, 0.0, 0.0]);
    }
}
