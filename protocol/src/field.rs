//! Field elements and the integer encodings used to put protocol quantities into them
//! (PROTOCOL.md §2 and §3).

use ff::PrimeField;
pub use halo2curves::bn256::Fr;

/// Embeds an unsigned integer into `Fr` (always exact: `u128 < p`).
pub fn fr_from_u128(v: u128) -> Fr {
    Fr::from_u128(v)
}

/// Embeds a signed integer into `Fr`: non-negative values map to themselves and a negative
/// `v` maps to `p - |v|` (PROTOCOL.md §2.3). Exact for every `i128`.
pub fn fr_from_i128(v: i128) -> Fr {
    if v >= 0 {
        Fr::from_u128(v as u128)
    } else {
        -Fr::from_u128(v.unsigned_abs())
    }
}

/// Returns the canonical little-endian integer of `f` if it is below `2^128`, else `None`.
pub fn fr_to_u128(f: &Fr) -> Option<u128> {
    let repr = f.to_repr();
    let bytes = repr.as_ref();
    if bytes[16..].iter().any(|b| *b != 0) {
        return None;
    }
    let mut lo = [0u8; 16];
    lo.copy_from_slice(&bytes[..16]);
    Some(u128::from_le_bytes(lo))
}

/// Canonical 32-byte big-endian encoding of a field element (PROTOCOL.md §10).
pub fn fr_to_be_bytes(f: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(f.to_repr().as_ref());
    out.reverse();
    out
}

/// Decodes a canonical 32-byte big-endian field element; `None` if the integer is `>= p`.
pub fn fr_from_be_bytes(bytes: &[u8; 32]) -> Option<Fr> {
    let mut le = *bytes;
    le.reverse();
    let mut repr = <Fr as PrimeField>::Repr::default();
    repr.as_mut().copy_from_slice(&le);
    Option::from(Fr::from_repr(repr))
}

/// Interprets up to 31 bytes as a big-endian integer in `Fr` (always `< 2^248 < p`).
///
/// # Panics
/// If `bytes.len() > 31`.
pub fn fr_from_short_bytes(bytes: &[u8]) -> Fr {
    assert!(bytes.len() <= 31, "at most 31 bytes fit below the modulus");
    let mut be = [0u8; 32];
    be[32 - bytes.len()..].copy_from_slice(bytes);
    fr_from_be_bytes(&be).expect("< 2^248 is canonical")
}

/// The field element of an ASCII domain tag such as `"collar/order/v1"` (PROTOCOL.md §3.2).
///
/// # Panics
/// If the tag is longer than 31 bytes.
pub fn domain_tag(tag: &str) -> Fr {
    fr_from_short_bytes(tag.as_bytes())
}

/// Serde for `Fr` as a `0x`-prefixed, 64-digit big-endian hex string; non-canonical values are
/// rejected. Use as `#[serde(with = "crate::field::fr_hex")]`.
pub mod fr_hex {
    use super::{fr_from_be_bytes, fr_to_be_bytes, Fr};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Serialises `f` as `0x…` (64 hex digits).
    pub fn serialize<S: Serializer>(f: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(fr_to_be_bytes(f))))
    }

    /// Parses `0x…` (1 to 64 hex digits) into a canonical field element.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(D::Error::custom)
    }

    /// Parses `0x…` (1 to 64 hex digits) into a canonical field element.
    pub fn parse(s: &str) -> Result<Fr, String> {
        let digits = s
            .strip_prefix("0x")
            .ok_or("field element must start with 0x")?;
        if digits.is_empty() || digits.len() > 64 {
            return Err("field element must have 1 to 64 hex digits".into());
        }
        let padded = format!("{digits:0>64}");
        let mut be = [0u8; 32];
        hex::decode_to_slice(&padded, &mut be).map_err(|e| format!("bad hex: {e}"))?;
        fr_from_be_bytes(&be).ok_or_else(|| "field element is not below the modulus".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_embedding_round_trips_through_negation() {
        assert_eq!(fr_from_i128(-5) + Fr::from(5u64), Fr::zero());
        assert_eq!(fr_from_i128(7), Fr::from(7u64));
        assert_eq!(
            fr_from_i128(i128::MIN) + Fr::from_u128(1u128 << 127),
            Fr::zero()
        );
    }

    #[test]
    fn be_bytes_round_trip_and_reject_non_canonical() {
        let f = fr_from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let b = fr_to_be_bytes(&f);
        assert_eq!(b[31], 0x10);
        assert_eq!(fr_from_be_bytes(&b), Some(f));
        assert_eq!(fr_from_be_bytes(&[0xff; 32]), None);
        assert_eq!(
            fr_to_u128(&f),
            Some(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10)
        );
        assert_eq!(fr_to_u128(&-Fr::one()), None);
    }

    #[test]
    fn hex_serde_rejects_non_canonical() {
        let f = -Fr::one();
        let s = format!("0x{}", hex::encode(fr_to_be_bytes(&f)));
        assert_eq!(fr_hex::parse(&s), Ok(f));
        assert_eq!(fr_hex::parse("0x1"), Ok(Fr::one()));
        assert!(fr_hex::parse(&format!("0x{}", "f".repeat(64))).is_err());
        assert!(fr_hex::parse("12").is_err());
        assert!(fr_hex::parse("0xzz").is_err());
    }

    #[test]
    fn domain_tags_differ() {
        assert_ne!(
            domain_tag("collar/order/v1"),
            domain_tag("collar/withdraw/v1")
        );
        assert_eq!(domain_tag(""), Fr::zero());
    }
}
