//! Deterministic ids and tokens: Salesforce's 18-character case-safe ids (with the real checksum
//! suffix), HubSpot's numeric ids, and random-looking tokens from a seeded generator.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 18-character form of a 15-character Salesforce id: a 3-character suffix encodes which of
/// the 15 characters are upper case, so the id survives case-insensitive systems.
pub fn salesforce_case_safe(id15: &str) -> String {
    const SUFFIX: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = id15.as_bytes();
    let mut out = id15.to_owned();
    for chunk in bytes.chunks(5) {
        let mut bits = 0usize;
        for (i, b) in chunk.iter().enumerate() {
            if b.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        out.push(SUFFIX[bits] as char);
    }
    out
}

/// A Salesforce id for the `n`th record with key prefix `prefix` (`003` Contact, ...), on pod `5g`.
pub fn salesforce_id(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 10];
    let mut value = n;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    let id15 = format!("{prefix}5g{}", String::from_utf8_lossy(&digits));
    salesforce_case_safe(&id15)
}

/// Seeded generator of tokens and codes.
#[derive(Debug)]
pub struct TokenGen {
    rng: ChaCha8Rng,
}

impl TokenGen {
    /// A generator; the same seed yields the same sequence.
    pub fn new(seed: u64) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// `len` random base62 characters.
    pub fn alnum(&mut self, len: usize) -> String {
        (0..len).map(|_| BASE62[self.rng.gen_range(0..62)] as char).collect()
    }

    /// A UUID-shaped random string (HubSpot refresh tokens, correlation ids).
    pub fn uuid_like(&mut self) -> String {
        let hex: String = (0..32).map(|_| format!("{:x}", self.rng.gen_range(0..16u8))).collect();
        format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
    }

    /// A float in [0, 1) for fault injection.
    pub fn fraction(&mut self) -> f64 {
        self.rng.r#gen::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_safe_suffix_matches_salesforce_examples() {
        // Each 5-character chunk contributes one suffix letter: bit i set when character i is upper case.
        assert_eq!(salesforce_case_safe("00D000000000062"), "00D000000000062EAA");
        assert_eq!(salesforce_case_safe("003ABCDE00000FG"), "003ABCDE00000FGYHY");
        assert_eq!(salesforce_case_safe("003000000000001"), "003000000000001AAA");
    }

    #[test]
    fn ids_are_18_characters_with_the_prefix_and_distinct() {
        let a = salesforce_id("003", 1);
        let b = salesforce_id("003", 2);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("003") && a != b);
    }

    #[test]
    fn the_same_seed_gives_the_same_tokens() {
        assert_eq!(TokenGen::new(7).alnum(20), TokenGen::new(7).alnum(20));
        assert_ne!(TokenGen::new(7).alnum(20), TokenGen::new(8).alnum(20));
    }
}
