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
    /// Print the verified public inputs as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `collar verify`: exit status 0 on a valid proof, non-zero with the failed check named.
pub fn run(a: Args) -> anyhow::Result<()> {
    match collar_verifier::verify_files(&a.proof, &a.vk) {
        Ok(v) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v.public_inputs)?);
            } else {
                println!(
                    "valid: batch {} of circuit {} moves the state root {:?} -> {:?}",
                    v.public_inputs.batch_number,
                    v.circuit_id,
                    v.public_inputs.old_root,
                    v.public_inputs.new_root
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
