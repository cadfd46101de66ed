//! Join tokens: making them and checking one a joining node presents.

use rand::RngCore;
use swarmr_proto::{JoinTokens, NodeRole};

use super::ids::base36;

const PREFIX: &str = "SWMTKN-1-";

pub fn new_token(ca_digest: &[u8; 32]) -> String {
    new_token_with_digest(&base36(ca_digest, 50))
}

/// A fresh secret for the CA whose base36 digest is `digest36`.
pub fn new_token_with_digest(digest36: &str) -> String {
    let mut secret = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut secret);
    format!("{PREFIX}{digest36}-{}", base36(&secret, 25))
}

/// Which role `presented` admits, or why it admits none.
pub fn check_token(presented: &str, tokens: &JoinTokens) -> Result<NodeRole, TokenCheck> {
    let (digest, _) = parse_token(presented).ok_or(TokenCheck::Malformed)?;
    if same(presented, &tokens.manager) {
        return Ok(NodeRole::Manager);
    }
    if same(presented, &tokens.worker) {
        return Ok(NodeRole::Worker);
    }
    match parse_token(&tokens.worker) {
        Some((ours, _)) if ours != digest => Err(TokenCheck::OtherCluster),
        _ => Err(TokenCheck::Invalid),
    }
}

/// Compares in time independent of where the strings differ, so response times do not
/// reveal how much of a guessed secret is right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A token split into its parts; `None` if it is not shaped like one.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (digest, secret) = rest.split_once('-')?;
    let base36 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    (digest.len() == 50 && secret.len() == 25 && base36(digest) && base36(secret))
        .then_some((digest, secret))
}

/// What a presented token turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Malformed,
    /// Made by another cluster's CA: the manager is not the one the token was issued for.
    OtherCluster,
    /// Right cluster, but not a current token (rotated or mistyped).
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_dockers_shape() {
        let token = new_token(&[7u8; 32]);
        let (digest, secret) = parse_token(&token).unwrap();
        assert_eq!(digest, base36(&[7u8; 32], 50));
        assert_eq!(secret.len(), 25);
        assert_ne!(token, new_token(&[7u8; 32]));
    }

    #[test]
    fn tokens_admit_their_role_only() {
        let tokens = JoinTokens {
            worker: new_token(&[1u8; 32]),
            manager: new_token(&[1u8; 32]),
        };
        assert_eq!(check_token(&tokens.worker, &tokens), Ok(NodeRole::Worker));
        assert_eq!(check_token(&tokens.manager, &tokens), Ok(NodeRole::Manager));
        let rotated = new_token(&[1u8; 32]);
        assert_eq!(check_token(&rotated, &tokens), Err(TokenCheck::Invalid));
        let foreign = new_token(&[2u8; 32]);
        assert_eq!(
            check_token(&foreign, &tokens),
            Err(TokenCheck::OtherCluster)
        );
        assert_eq!(check_token("nope", &tokens), Err(TokenCheck::Malformed));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "SWMTKN-1-abc-def", "SWMTKN-2-x", "hello"] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }
}
