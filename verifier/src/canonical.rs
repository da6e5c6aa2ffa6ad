//! Canonical proof reading: every point and scalar a verifier reads from a proof must be in the
//! one encoding its value writes back to.
//!
//! halo2's compressed G1 encoding has spare bits that its decoder ignores (bit 7 of the last
//! byte, the infinity flag, is read only when `x = 0`), so one proof has many byte encodings
//! that all verify. [`CanonicalRead`] wraps any transcript, watches the bytes each read
//! consumes, and fails the read unless they equal the value's own encoding. It also records
//! the proof's layout (which bytes hold points, which scalars).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use halo2_base::halo2_proofs::halo2curves::bn256::{Fr, G1Affine};
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::halo2_proofs::halo2curves::group::GroupEncoding;
use halo2_base::halo2_proofs::halo2curves::{Coordinates, CurveAffine};
use halo2_base::halo2_proofs::transcript::{EncodedChallenge, Transcript, TranscriptRead};

/// One element of a proof transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Element {
    /// A G1 point (a commitment or an opening witness).
    Point,
    /// A scalar (an evaluation).
    Scalar,
}

impl Element {
    /// `"point"` or `"scalar"`.
    pub fn name(self) -> &'static str {
        match self {
            Element::Point => "point",
            Element::Scalar => "scalar",
        }
    }
}

/// How a transcript lays a point or a scalar out in the proof bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// halo2's Blake2b transcript: 32-byte compressed G1 points, 32-byte little-endian scalars.
    Compressed,
    /// snark-verifier's EVM transcript: `x ‖ y` big-endian (64 bytes, the identity as zeros),
    /// 32-byte big-endian scalars.
    Evm,
}

impl Encoding {
    fn point(self, p: &G1Affine) -> Vec<u8> {
        match self {
            Encoding::Compressed => p.to_bytes().as_ref().to_vec(),
            Encoding::Evm => {
                let coords: Option<Coordinates<G1Affine>> = p.coordinates().into();
                match coords {
                    None => vec![0; 64],
                    Some(c) => {
                        let mut out = Vec::with_capacity(64);
                        for v in [c.x(), c.y()] {
                            let mut b = v.to_repr();
                            b.reverse();
                            out.extend_from_slice(&b);
                        }
                        out
                    }
                }
            }
        }
    }

    fn scalar(self, s: &Fr) -> Vec<u8> {
        let mut b = s.to_repr().to_vec();
        if self == Encoding::Evm {
            b.reverse();
        }
        b
    }
}

/// A reader over proof bytes whose position a [`CanonicalRead`] can see.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: Rc<Cell<usize>>,
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.pos.get();
        let rest = &self.bytes[at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos.set(at + n);
        Ok(n)
    }
}

/// The first non-canonical element of a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonCanonical {
    /// Its byte offset in the proof.
    pub offset: usize,
    /// What it is.
    pub element: Element,
}

/// A transcript that refuses non-canonical encodings and records the proof's layout.
///
/// Build it with [`CanonicalRead::over`]; after verification, [`CanonicalRead::finish`] says
/// whether the reads were canonical and whether the whole proof was read.
pub(crate) struct CanonicalRead<'a, T> {
    inner: T,
    bytes: &'a [u8],
    pos: Rc<Cell<usize>>,
    encoding: Encoding,
    layout: Vec<(usize, Element)>,
    found: Option<NonCanonical>,
}

impl<'a, T> CanonicalRead<'a, T> {
    /// A canonical transcript over `proof`; `init` builds the inner transcript from a reader.
    pub(crate) fn over(
        proof: &'a [u8],
        encoding: Encoding,
        init: impl FnOnce(Cursor<'a>) -> T,
    ) -> Self {
        let pos = Rc::new(Cell::new(0));
        let inner = init(Cursor {
            bytes: proof,
            pos: Rc::clone(&pos),
        });
        Self {
            inner,
            bytes: proof,
            pos,
            encoding,
            layout: Vec::new(),
            found: None,
        }
    }

    /// The first non-canonical element read, if any, and the number of bytes read.
    pub(crate) fn finish(self) -> (Option<NonCanonical>, usize, Vec<(usize, Element)>) {
        (self.found, self.pos.get(), self.layout)
    }

    /// Checks that the bytes consumed since `start` are `canonical`; an error stops the proof.
    fn check(&mut self, start: usize, element: Element, canonical: &[u8]) -> io::Result<()> {
        self.layout.push((start, element));
        if &self.bytes[start..self.pos.get()] == canonical {
            return Ok(());
        }
        self.found.get_or_insert(NonCanonical {
            offset: start,
            element,
        });
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("non-canonical {} at byte {start}", element.name()),
        ))
    }
}

impl<E, T> Transcript<G1Affine, E> for CanonicalRead<'_, T>
where
    E: EncodedChallenge<G1Affine>,
    T: Transcript<G1Affine, E>,
{
    fn squeeze_challenge(&mut self) -> E {
        self.inner.squeeze_challenge()
    }
    fn common_point(&mut self, point: G1Affine) -> io::Result<()> {
        self.inner.common_point(point)
    }
    fn common_scalar(&mut self, scalar: Fr) -> io::Result<()> {
        self.inner.common_scalar(scalar)
    }
}

impl<E, T> TranscriptRead<G1Affine, E> for CanonicalRead<'_, T>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptRead<G1Affine, E>,
{
    fn read_point(&mut self) -> io::Result<G1Affine> {
        let start = self.pos.get();
        let p = self.inner.read_point()?;
        let canonical = self.encoding.point(&p);
        self.check(start, Element::Point, &canonical)?;
        Ok(p)
    }
    fn read_scalar(&mut self) -> io::Result<Fr> {
        let start = self.pos.get();
        let s = self.inner.read_scalar()?;
        let canonical = self.encoding.scalar(&s);
        self.check(start, Element::Scalar, &canonical)?;
        Ok(s)
    }
}
