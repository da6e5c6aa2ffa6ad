//! Byte-level reading and writing shared by the artifact and verifying-key formats.
//!
//! Every integer is little-endian; every length is checked against a maximum before anything
//! is allocated, so a hostile file cannot make the reader allocate more than its own size.

use collar_protocol::field::{fr_from_be_bytes, fr_to_be_bytes};
use collar_protocol::Fr;
use halo2_base::halo2_proofs::{SerdeCurveAffine, SerdeFormat};

use crate::FormatError;

/// Appends the encodings of the format's values to a byte vector.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    /// A length-prefixed (u32) byte string. Precondition: shorter than 4 GiB (callers check
    /// their own, much smaller, maxima on construction).
    pub(crate) fn var(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).expect("length checked by the caller"));
        self.bytes(b);
    }
    pub(crate) fn fr(&mut self, f: &Fr) {
        self.bytes(&fr_to_be_bytes(f));
    }
    /// A curve point in halo2's `RawBytes` encoding.
    pub(crate) fn point<C: SerdeCurveAffine>(&mut self, p: &C) {
        p.write(&mut self.buf, SerdeFormat::RawBytes)
            .expect("writing to a Vec cannot fail");
    }
}

/// Reads values back, failing with a [`FormatError`] that names the field being read.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        if self.rest.len() < n {
            return Err(FormatError::Truncated { what });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, FormatError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    /// A length-prefixed byte string of at most `max` bytes.
    pub(crate) fn var(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], FormatError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(FormatError::TooLarge { what, len, max });
        }
        self.take(len, what)
    }
    /// A circuit id ([`crate::artifact::check_circuit_id`]).
    pub(crate) fn circuit_id(&mut self) -> Result<String, FormatError> {
        let b = self.var("circuit id", crate::artifact::MAX_CIRCUIT_ID_LEN)?;
        let id = String::from_utf8(b.to_vec())
            .map_err(|_| FormatError::NotUtf8 { what: "circuit id" })?;
        crate::artifact::check_circuit_id(&id)?;
        Ok(id)
    }
    /// A canonical field element, 32 bytes big-endian.
    pub(crate) fn fr(&mut self, what: &'static str) -> Result<Fr, FormatError> {
        let b = self.array::<32>(what)?;
        fr_from_be_bytes(&b).ok_or(FormatError::InvalidField { what })
    }
    /// A curve point in halo2's `RawBytes` encoding, on the curve and in its one encoding (the
    /// bytes it writes back to).
    pub(crate) fn point<C: SerdeCurveAffine>(
        &mut self,
        what: &'static str,
    ) -> Result<C, FormatError> {
        let start = self.rest;
        let p = C::read(&mut self.rest, SerdeFormat::RawBytes).map_err(|e| point_error(e, what))?;
        let mut w = Writer::default();
        w.point(&p);
        if start[..start.len() - self.rest.len()] == w.buf[..] {
            Ok(p)
        } else {
            Err(FormatError::InvalidPoint { what })
        }
    }
    pub(crate) fn finish(self) -> Result<(), FormatError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(FormatError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }
}

/// Checks the 8-byte magic and the format version, in that order.
pub(crate) fn header(
    r: &mut Reader<'_>,
    magic: &[u8; 8],
    kind: &'static str,
    version: u16,
) -> Result<(), FormatError> {
    let found = r.array::<8>("magic")?;
    if &found != magic {
        return Err(FormatError::BadMagic { expected: kind });
    }
    let v = r.u16("version")?;
    if v != version {
        return Err(FormatError::UnsupportedVersion {
            kind,
            found: v,
            supported: version,
        });
    }
    Ok(())
}

fn point_error(e: std::io::Error, what: &'static str) -> FormatError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FormatError::Truncated { what }
    } else {
        FormatError::InvalidPoint { what }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_base::halo2_proofs::halo2curves::bn256::{G1Affine, G2Affine};

    /// `x + q` (q the base field modulus) in place of `x`, little-endian, if it fits.
    fn plus_modulus(x: &[u8]) -> Option<Vec<u8>> {
        // q of BN254, little-endian.
        let q = hex::decode("47fd7cd8168c203c8dca7168916a81975d588181b64550b829a031e1724e6430")
            .expect("hex");
        let mut out = Vec::with_capacity(32);
        let mut carry = 0u16;
        for (a, b) in x.iter().zip(&q) {
            let s = u16::from(*a) + u16::from(*b) + carry;
            out.push(s as u8);
            carry = s >> 8;
        }
        (carry == 0).then_some(out)
    }

    #[test]
    fn points_are_read_in_their_one_encoding() {
        let mut w = Writer::default();
        w.point(&G1Affine::generator());
        let good = w.buf.clone();
        assert_eq!(
            Reader::new(&good).point::<G1Affine>("g").unwrap(),
            G1Affine::generator()
        );
        let mut bad = good.clone();
        bad[..32].copy_from_slice(&plus_modulus(&good[..32]).expect("1 + q fits"));
        assert_eq!(
            Reader::new(&bad).point::<G1Affine>("g"),
            Err(FormatError::InvalidPoint { what: "g" })
        );
        let mut w = Writer::default();
        w.point(&G2Affine::generator());
        assert_eq!(
            Reader::new(&w.buf).point::<G2Affine>("h").unwrap(),
            G2Affine::generator()
        );
    }
}
