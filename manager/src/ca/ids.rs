//! Identifiers in Docker Swarm's shape: 25 characters of base36 from 128 random bits.

use rand::RngCore;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Base36 of a big-endian unsigned number, left-padded with zeros to `width`.
pub(crate) fn base36(bytes: &[u8], width: usize) -> String {
    let mut digits = Vec::new();
    let mut number: Vec<u8> = bytes.to_vec();
    while number.iter().any(|&b| b != 0) {
        // Long division of the big-endian number by 36.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = (acc / 36) as u8;
            remainder = acc % 36;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// A new node, cluster or object id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    base36(&bytes, 25)
}

/// A Raft member id: random and never zero.
pub fn new_raft_id() -> u64 {
    loop {
        let id = rand::thread_rng().next_u64();
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_matches_known_values() {
        assert_eq!(base36(&[0], 3), "000");
        assert_eq!(base36(&[36], 1), "10");
        assert_eq!(base36(&[0xff, 0xff], 0), "1ekf");
        // 2^128 - 1 needs exactly 25 base36 digits, hence Docker's width.
        assert_eq!(base36(&[0xff; 16], 0).len(), 25);
    }

    #[test]
    fn ids_are_25_chars_and_distinct() {
        let a = new_id();
        assert_eq!(a.len(), 25);
        assert_ne!(a, new_id());
    }
}
