//! The node's ed25519 identity, kept in a key file across restarts.
//!
//! One 32-byte seed gives both the ed25519-dalek signing key (payload signatures) and the
//! libp2p identity (transport, peer id), so a peer id and a signer key always belong together.

use std::path::Path;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use libp2p::identity::Keypair;

/// A node identity.
#[derive(Clone)]
pub struct Identity {
    seed: [u8; 32],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &hex::encode(self.public_key()))
            .finish()
    }
}

impl Identity {
    /// An identity from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    /// A fresh random identity.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self { seed }
    }

    /// Loads the identity from `path`, creating it (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading key file {}", path.display()))?;
            let bytes = hex::decode(text.trim()).with_context(|| {
                format!(
                    "key file {} is not hex: delete it to make a new identity",
                    path.display()
                )
            })?;
            let seed: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                anyhow::anyhow!(
                    "key file {} holds {} bytes, expected a 32-byte seed",
                    path.display(),
                    b.len()
                )
            })?;
            return Ok(Self { seed });
        }
        let identity = Self::generate();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, hex::encode(identity.seed))
            .with_context(|| format!("writing key file {}", tmp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, path)
            .with_context(|| format!("installing key file {}", path.display()))?;
        Ok(identity)
    }

    /// The payload signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.seed)
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing_key().verifying_key().to_bytes()
    }

    /// The libp2p keypair (same key).
    pub fn keypair(&self) -> anyhow::Result<Keypair> {
        let mut seed = self.seed;
        Keypair::ed25519_from_bytes(&mut seed).context("deriving the libp2p identity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_a_restart_and_matches_the_peer_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let a = Identity::load_or_create(&path).unwrap();
        let b = Identity::load_or_create(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let kp = a.keypair().unwrap();
        let libp2p_pub = kp.public().try_into_ed25519().unwrap().to_bytes();
        assert_eq!(libp2p_pub, a.public_key());
    }

    #[test]
    fn a_corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        std::fs::write(&path, "not hex").unwrap();
        let err = Identity::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("not hex"), "{err}");
    }
}
