//! The on-disk key cache: one directory per circuit configuration hash.
//!
//! ```text
//! <cache_dir>/<label>-<hash16>/manifest.json   the configuration, its hash, halo2-base's
//!                                              circuit params and break points, pk digest
//!                              pk.bin          halo2 proving key (RawBytes)
//!                              vk.bin          collar-verifier VerifyingKeyFile
//! ```
//! Entries are written to a temporary directory and renamed into place, so a crash never
//! leaves a half-written entry under the final name.

use std::io::Write;
use std::path::{Path, PathBuf};

use collar_circuits::pow5::HashingCircuitParams;
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use serde::{Deserialize, Serialize};

use crate::ProverError;

/// What a cache entry records besides the keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// Hex SHA-256 of the configuration description (the entry's key).
    pub config_hash: String,
    /// The description itself, for humans.
    pub description: serde_json::Value,
    /// halo2-base's circuit configuration from keygen.
    pub circuit_params: HashingCircuitParams,
    /// halo2-base's break points from keygen.
    pub break_points: MultiPhaseThreadBreakPoints,
    /// Hex SHA-256 of `pk.bin`, checked before the proving key is parsed.
    pub pk_sha256: String,
}

pub(crate) fn entry_dir(cache_dir: &Path, label: &str, config_hash: &str) -> PathBuf {
    cache_dir.join(format!("{label}-{}", &config_hash[..16]))
}

/// Writes `path` through `f` into a sibling temporary file and renames it into place.
pub(crate) fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), ProverError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let run = || -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        std::fs::rename(&tmp, path)
    };
    run().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ProverError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest is read strictly, nested circuit parameters included: an entry written by
    /// something else is not used.
    #[test]
    fn a_manifest_with_an_unknown_field_is_refused() {
        let m = Manifest {
            config_hash: "00".into(),
            description: serde_json::json!({"any": "thing"}),
            circuit_params: HashingCircuitParams::default(),
            break_points: vec![vec![1, 2]],
            pk_sha256: "11".into(),
        };
        let good = serde_json::to_value(&m).unwrap();
        assert!(serde_json::from_value::<Manifest>(good.clone()).is_ok());
        let mut top = good.clone();
        top["surprise"] = 1.into();
        let mut nested = good;
        nested["circuit_params"]["surprise"] = 1.into();
        for bad in [top, nested] {
            let e = serde_json::from_value::<Manifest>(bad).unwrap_err();
            assert!(e.to_string().contains("unknown field"), "{e}");
        }
    }
}
