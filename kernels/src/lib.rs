//! The CPU kernels of convrec's native sentence encoder (`convrec::ml::native`), in a crate
//! of their own for two reasons: the service crate forbids `unsafe`, which these need
//! (AVX-512 intrinsics behind a run-time CPU check, threads writing disjoint tiles of one
//! buffer; every block says why it is sound), and the dev profile can optimise them fully
//! while the service compiles fast (`[profile.dev.package.convrec-kernels]`).
//!
//! - [`gemm`]: dense layers `x·W + bias` with `W` packed once into panels, an AVX-512
//!   micro-kernel (portable fallback) and tiles spread over rayon's threads;
//! - [`math`]: vectorisable `erf`, `exp`, GELU, softmax and layer norm;
//! - [`attention`]: self-attention over texts packed back to back, without padding.

pub mod attention;
pub mod gemm;
pub mod math;

pub use math::has_avx512;

/// One output buffer that several rayon tasks write, each to its own disjoint part (tiles of
/// a product, one head's columns of one text's rows). The writers check their bounds.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(*mut f32);

impl SharedOut {
    pub(crate) fn new(buffer: &mut [f32]) -> Self {
        Self(buffer.as_mut_ptr())
    }

    // A method, not field access, so closures capture the whole (Sync) wrapper rather than
    // the raw pointer inside it.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: the pointer is only written through, by tasks that each own a disjoint part of
// the buffer while the buffer's `&mut` borrow is held by the call that spawned them.
unsafe impl Send for SharedOut {}
// SAFETY: as above; no two threads write the same element and nobody reads meanwhile.
unsafe impl Sync for SharedOut {}
