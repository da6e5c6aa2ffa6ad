//! `collar verify PROOF --vk VK`: checks a proof artifact against a verifying-key file, natively.

use std::path::PathBuf;

/// Arguments of `collar verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The proof artifact (binary, or JSON when the name ends in `.json`).
    pub proof: PathBuf,
    /// The verifying-key file the proof must verify against.
    #[arg(long)]
    pub vk: PathBuf,
    /// Print what was verified as JSON: circuit id, vk hash, SRS and public inputs.
    #[arg(long)]
    pub json: bool,
}

/// Runs `collar verify`: exit status 0 on a valid proof, non-zero with the failed check named.
/// Everything it prints was checked: the circuit id and SRS are the key file's (which the
/// artifact's must equal), the vk hash is the file's own.
pub fn run(a: Args) -> anyhow::Result<()> {
    match collar_verifier::verify_files(&a.proof, &a.vk) {
        Ok(v) => {
            if a.json {
                let out = serde_json::json!({
                    "valid": true,
                    "circuit_id": v.circuit_id,
                    "vk_hash": format!("0x{}", hex::encode(v.vk_hash)),
                    "srs": v.srs,
                    "public_inputs": v.public_inputs,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "valid: batch {} moves the state root {:?} -> {:?}",
                    v.public_inputs.batch_number,
                    v.public_inputs.old_root,
                    v.public_inputs.new_root
                );
                println!("  circuit  {}", v.circuit_id);
                println!("  vk       0x{}", hex::encode(v.vk_hash));
                println!("  srs      {}", v.srs);
                println!(
                    "  proof    {} points and scalars, canonically encoded",
                    v.proof_layout.len()
                );
                if v.srs.is_insecure() {
                    println!("warning: {} (development only)", v.srs);
                }
            }
            Ok(())
        }
        Err(e) => {
            // A rejection is an answer, not a crash: one line on stderr and exit status 1.
            eprintln!("collar verify: proof rejected ({}): {e}", e.check());
            std::process::exit(1);
        }
    }
}
