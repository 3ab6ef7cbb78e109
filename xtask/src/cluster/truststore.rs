//! A PKCS#12 truststore for Java clients (`auth --java-truststore`): the
//! cluster's CA certificates as trusted certificate entries, in the file
//! format every JDK since 9 reads as a truststore.
//!
//! What the JDK needs, and what keytool writes (`keytool -importcert` of
//! JDK 17, read back with openssl): each certificate in a certBag carrying
//! a friendlyName (the alias) and Oracle's "trusted key usage" attribute
//! (2.16.840.1.113894.746875.1.1 = anyExtendedKeyUsage); without that
//! attribute the JDK loads the bag as no entry at all. The file's integrity
//! is an HMAC-SHA256 over the contents with a key derived from the password
//! by PKCS#12's own KDF (RFC 7292, appendix B) over SHA-256, 10,000
//! iterations and a 20-byte salt: keytool's default MAC (`HmacPBESHA256`,
//! read by JDK 12 and later, 11.0.12 and 8u301).
//!
//! The certificates themselves are not encrypted, as keytool writes them
//! with `-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE`: a CA
//! certificate is public, and a JVM given only `javax.net.ssl.trustStore`
//! and `trustStoreType` (no password) loads plain certificates and skips
//! the MAC, whereas from keytool's default (AES-256 encrypted certificates)
//! it loads an empty truststore (measured on JDK 17) and every connection
//! fails. With `javax.net.ssl.trustStorePassword` the JVM checks the MAC.
//! (The JDK's own cacerts is a PKCS#12 file of unencrypted certificates
//! since JDK 18, JDK-8275253.)
//!
//! A unit test holds the encoding to keytool's own bytes.

use std::path::Path;

use ring::{digest, hmac, rand::SecureRandom};

use crate::Error;

/// PBKDF iterations of the MAC key, as keytool.
pub const ITERATIONS: u32 = 10_000;
/// The alias of the first certificate; later ones are `kubernetes-ca-2`, ...
pub const ALIAS: &str = "kubernetes-ca";
/// Characters of a generated password (from the OS's random source).
pub const PASSWORD_LEN: usize = 24;

/// The JVM flags that make the JDK's default SSLContext trust `path` (made
/// absolute: the JVM may run elsewhere), quoted for a shell where needed.
pub fn jvm_flags(path: &Path) -> Vec<String> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    vec![
        shell_word(&format!("-Djavax.net.ssl.trustStore={}", path.display())),
        "-Djavax.net.ssl.trustStoreType=PKCS12".to_owned(),
    ]
}

/// `word`, single-quoted when a shell would split or expand it.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if word.chars().all(plain) { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// A password of [`PASSWORD_LEN`] letters and digits, each drawn uniformly
/// from the OS's random source (about 143 bits).
pub fn generate_password() -> Result<String, Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // The largest multiple of 62 below 256: bytes at or above it are
    // drawn again, so every character is equally likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let rng = ring::rand::SystemRandom::new();
    let mut password = String::with_capacity(PASSWORD_LEN);
    let mut bytes = [0u8; 64];
    while password.len() < PASSWORD_LEN {
        rng.fill(&mut bytes).map_err(|_| Error::prerequisite("the OS random source failed"))?;
        for &b in bytes.iter().filter(|&&b| b < limit) {
            if password.len() < PASSWORD_LEN {
                password.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    Ok(password)
}

/// The aliases the certificates get, in order.
pub fn aliases(count: usize) -> Vec<String> {
    (0..count).map(|i| if i == 0 { ALIAS.to_owned() } else { format!("{ALIAS}-{}", i + 1) }).collect()
}

/// The truststore file: each DER certificate a trusted entry (aliases by
/// [`aliases`]), the MAC keyed by `password` with a fresh random salt.
pub fn pkcs12(certificates: &[Vec<u8>], password: &str) -> Result<Vec<u8>, Error> {
    let mut salt = [0u8; 20];
    ring::rand::SystemRandom::new().fill(&mut salt).map_err(|_| Error::prerequisite("the OS random source failed"))?;
    let entries: Vec<(String, &[u8])> =
        aliases(certificates.len()).into_iter().zip(certificates.iter().map(Vec::as_slice)).collect();
    Ok(encode(&entries, password, &salt, ITERATIONS))
}

/// The PFX (RFC 7292) of trusted certificate entries, laid out as keytool
/// lays them out: one unencrypted SafeContents of certBags, then MacData.
fn encode(entries: &[(String, &[u8])], password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let bags: Vec<u8> = entries
        .iter()
        .flat_map(|(alias, cert)| {
            let cert_bag = der::seq(&[der::oid(oid::X509_CERTIFICATE), der::explicit0(&der::octets(cert))].concat());
            // keytool writes the two attributes in this order (not sorted as
            // DER's SET OF would be); the JDK reads either.
            let friendly_name = der::seq(
                &[der::oid(oid::FRIENDLY_NAME), der::set(&der::tlv(der::BMP_STRING, &utf16be(alias)))].concat(),
            );
            let trusted = der::seq(
                &[der::oid(oid::ORACLE_TRUSTED_KEY_USAGE), der::set(&der::oid(oid::ANY_EXTENDED_KEY_USAGE))].concat(),
            );
            der::seq(
                &[der::oid(oid::CERT_BAG), der::explicit0(&cert_bag), der::set(&[friendly_name, trusted].concat())]
                    .concat(),
            )
        })
        .collect();
    let safe_contents = der::seq(&bags);
    let auth_safe = der::seq(&data(&safe_contents));

    let key = kdf(password, salt, MAC_KEY_ID, iterations, digest::SHA256_OUTPUT_LEN);
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &auth_safe);
    let algorithm = der::seq(&[der::oid(oid::SHA256), der::NULL.to_vec()].concat());
    let mac_data = der::seq(
        &[der::seq(&[algorithm, der::octets(mac.as_ref())].concat()), der::octets(salt), der::integer(iterations)]
            .concat(),
    );
    der::seq(&[der::integer(3), data(&auth_safe), mac_data].concat())
}

/// A ContentInfo of type data holding `content`.
fn data(content: &[u8]) -> Vec<u8> {
    der::seq(&[der::oid(oid::DATA), der::explicit0(&der::octets(content))].concat())
}

fn utf16be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// RFC 7292 B.3: the ID byte of key material for a MAC.
const MAC_KEY_ID: u8 = 3;

/// PKCS#12's key derivation (RFC 7292 appendix B.2) over SHA-256 (u = 32,
/// v = 64 bytes). The password is a BMPString with its two zero bytes at the
/// end, as Java's `char[]` gives it.
fn kdf(password: &str, salt: &[u8], id: u8, iterations: u32, len: usize) -> Vec<u8> {
    const U: usize = digest::SHA256_OUTPUT_LEN;
    const V: usize = 64;
    // Repeats `bytes` to the next multiple of V (nothing when empty).
    let fill = |bytes: &[u8]| -> Vec<u8> {
        let n = bytes.len().div_ceil(V) * V;
        bytes.iter().copied().cycle().take(n).collect()
    };
    let mut password = utf16be(password);
    password.extend([0, 0]);
    let mut i = [fill(salt), fill(&password)].concat();
    let d = [id; V];
    let mut out = Vec::with_capacity(len);
    loop {
        let mut a = digest::digest(&digest::SHA256, &[&d[..], &i].concat());
        for _ in 1..iterations {
            a = digest::digest(&digest::SHA256, a.as_ref());
        }
        let a = a.as_ref();
        out.extend_from_slice(&a[..U.min(len - out.len())]);
        if out.len() == len {
            return out;
        }
        // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I, where
        // B is A repeated to v bytes.
        let b: Vec<u8> = a.iter().copied().cycle().take(V).collect();
        for block in i.chunks_mut(V) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().zip(&b).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
}

/// The object identifiers, as arcs.
mod oid {
    pub const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
    pub const CERT_BAG: &[u64] = &[1, 2, 840, 113549, 1, 12, 10, 1, 3];
    pub const X509_CERTIFICATE: &[u64] = &[1, 2, 840, 113549, 1, 9, 22, 1];
    pub const FRIENDLY_NAME: &[u64] = &[1, 2, 840, 113549, 1, 9, 20];
    /// Oracle's "trusted key usage": what makes the JDK take a certBag as a
    /// trusted certificate entry.
    pub const ORACLE_TRUSTED_KEY_USAGE: &[u64] = &[2, 16, 840, 1, 113894, 746875, 1, 1];
    pub const ANY_EXTENDED_KEY_USAGE: &[u64] = &[2, 5, 29, 37, 0];
    pub const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
}

/// The few DER encodings a PFX of certificates needs.
mod der {
    pub const BMP_STRING: u8 = 0x1e;
    pub const NULL: [u8; 2] = [0x05, 0x00];

    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let len = content.len();
        let mut out = vec![tag];
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    pub fn seq(content: &[u8]) -> Vec<u8> {
        tlv(0x30, content)
    }

    pub fn set(content: &[u8]) -> Vec<u8> {
        tlv(0x31, content)
    }

    pub fn octets(content: &[u8]) -> Vec<u8> {
        tlv(0x04, content)
    }

    /// `[0] EXPLICIT`.
    pub fn explicit0(content: &[u8]) -> Vec<u8> {
        tlv(0xa0, content)
    }

    /// A non-negative INTEGER, in the fewest bytes.
    pub fn integer(n: u32) -> Vec<u8> {
        let mut bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        if bytes.first().is_none_or(|&b| b & 0x80 != 0) {
            bytes.insert(0, 0);
        }
        tlv(0x02, &bytes)
    }

    pub fn oid(arcs: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        let base128 = |out: &mut Vec<u8>, mut n: u64| {
            let mut digits = vec![(n & 0x7f) as u8];
            n >>= 7;
            while n > 0 {
                digits.push(0x80 | (n & 0x7f) as u8);
                n >>= 7;
            }
            out.extend(digits.into_iter().rev());
        };
        base128(&mut out, arcs[0] * 40 + arcs[1]);
        for &arc in &arcs[2..] {
            base128(&mut out, arc);
        }
        tlv(0x06, &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// `keytool -J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE -importcert
    /// -noprompt -alias kubernetes-ca -file ca.pem -keystore ts.p12
    /// -storetype PKCS12 -storepass changeit` (OpenJDK 17.0.15) of the
    /// certificate below (openssl req -x509, EC P-256, CN=kubernetes).
    const KEYTOOL_P12: &str = "\
MIICfAIBAzCCAiYGCSqGSIb3DQEHAaCCAhcEggITMIICDzCCAgsGCSqGSIb3DQEHAaCCAfwEggH4MIIB9DCCAfAGCyqGSIb3DQEM\
CgEDoIIBmjCCAZYGCiqGSIb3DQEJFgGgggGGBIIBgjCCAX4wggEloAMCAQICFEzKaC01ppDbvWyGoxyoDZ61zhXuMAoGCCqGSM49\
BAMCMBUxEzARBgNVBAMMCmt1YmVybmV0ZXMwHhcNMjYxMjA0MTAwODI4WhcNMzYxMjAxMTAwODI4WjAVMRMwEQYDVQQDDAprdWJl\
cm5ldGVzMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEODqhzw4aGKpCUbpSv2hmxX59KD9eeV/cZ3QV74ssZbjTyMkwlPue5hL+\
adUJ6PjIpLC/EARu43DhOg+JSpjiq6NTMFEwHQYDVR0OBBYEFJvbUsdxEMHikJRThD+Tq8xVUW8ZMB8GA1UdIwQYMBaAFJvbUsdx\
EMHikJRThD+Tq8xVUW8ZMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgIfd8TK9+pv5toh+aEIv33cvJp28EN7u6\
8Vh8PSnn4WICIA5cZtCyChnrlG+jpseDqCkoN+b3WXUyaWWpQLy1gK6vMUMwKQYJKoZIhvcNAQkUMRweGgBrAHUAYgBlAHIAbgBl\
AHQAZQBzAC0AYwBhMBYGDGCGSAGG+WatynsBATEGBgRVHSUAME0wMTANBglghkgBZQMEAgEFAAQg+pcRiWOHwNsRZAKYU1Rfx37O\
obRLmoabHCW8V8mniO8EFG4tc8Tb4F89sW6q2i8zvk4I6Ad2AgInEA==";
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBfjCCASWgAwIBAgIUTMpoLTWmkNu9bIajHKgNnrXOFe4wCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa3ViZXJuZXRlczAeFw0yNjEyMDQxMDA4MjhaFw0zNjEyMDEx
MDA4MjhaMBUxEzARBgNVBAMMCmt1YmVybmV0ZXMwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ4OqHPDhoYqkJRulK/aGbFfn0oP155X9xndBXviyxluNPIyTCU+57m
Ev5p1Qno+MiksL8QBG7jcOE6D4lKmOKro1MwUTAdBgNVHQ4EFgQUm9tSx3EQweKQ
lFOEP5OrzFVRbxkwHwYDVR0jBBgwFoAUm9tSx3EQweKQlFOEP5OrzFVRbxkwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAh93xMr36m/m2iH5oQi/fd
y8mnbwQ3u7rxWHw9KefhYgIgDlxm0LIKGeuUb6Omx4OoKSg35vdZdTJpZalAvLWA
rq8=
-----END CERTIFICATE-----
";
    /// The MacData salt keytool drew for that file.
    const KEYTOOL_SALT: [u8; 20] = [
        0x6e, 0x2d, 0x73, 0xc4, 0xdb, 0xe0, 0x5f, 0x3d, 0xb1, 0x6e, 0xaa, 0xda, 0x2f, 0x33, 0xbe, 0x4e, 0x08, 0xe8,
        0x07, 0x76,
    ];

    #[test]
    fn the_encoding_is_keytools_byte_for_byte() {
        let keytool = base64::engine::general_purpose::STANDARD.decode(KEYTOOL_P12).unwrap();
        let certs = crate::cluster::pem_certificates(CA_PEM.as_bytes());
        assert_eq!(certs.len(), 1);
        let ours = encode(&[(ALIAS.to_owned(), &certs[0])], "changeit", &KEYTOOL_SALT, ITERATIONS);
        assert_eq!(ours, keytool);
        // Another password gives another MAC, and only that differs.
        let other = encode(&[(ALIAS.to_owned(), &certs[0])], "changeme", &KEYTOOL_SALT, ITERATIONS);
        assert_eq!(other.len(), keytool.len());
        let differing: Vec<usize> = (0..other.len()).filter(|&i| other[i] != keytool[i]).collect();
        // The file ends with the MAC (32 bytes), `04 14` and the salt, and
        // `02 02 27 10` (the iterations).
        let mac = keytool.len() - 4 - 22 - 32..keytool.len() - 4 - 22;
        assert!(!differing.is_empty() && differing.iter().all(|i| mac.contains(i)), "{differing:?}");
    }

    #[test]
    fn the_kdf_goes_past_one_hash_as_the_rfc_says() {
        // Longer than one SHA-256 output, so the I-block update runs: the
        // first 32 bytes must be what a 32-byte request gives.
        let short = kdf("pw", b"salt", MAC_KEY_ID, 3, 32);
        let long = kdf("pw", b"salt", MAC_KEY_ID, 3, 80);
        assert_eq!(long.len(), 80);
        assert_eq!(&long[..32], &short[..]);
        assert_ne!(&long[32..64], &long[..32]);
        // The ID byte separates key material from IVs and the like.
        assert_ne!(kdf("pw", b"salt", 1, 3, 32), short);
    }

    #[test]
    fn several_certificates_get_several_aliases() {
        assert_eq!(aliases(3), ["kubernetes-ca", "kubernetes-ca-2", "kubernetes-ca-3"]);
        let certs = crate::cluster::pem_certificates(CA_PEM.as_bytes());
        let two = pkcs12(&[certs[0].clone(), certs[0].clone()], "pw").unwrap();
        let one = pkcs12(&certs, "pw").unwrap();
        assert!(two.len() > one.len() + certs[0].len());
        // A fresh salt each time.
        assert_ne!(pkcs12(&certs, "pw").unwrap(), one);
    }

    #[test]
    fn generated_passwords_are_24_letters_and_digits_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn jvm_flags_are_absolute_and_quoted_for_a_shell() {
        assert_eq!(
            jvm_flags(Path::new("/tmp/ts.p12")),
            ["-Djavax.net.ssl.trustStore=/tmp/ts.p12", "-Djavax.net.ssl.trustStoreType=PKCS12"]
        );
        let relative = &jvm_flags(Path::new("ts.p12"))[0];
        assert!(relative.starts_with("-Djavax.net.ssl.trustStore=/") && relative.ends_with("/ts.p12"), "{relative}");
        assert_eq!(jvm_flags(Path::new("/my dir/it's.p12"))[0], r"'-Djavax.net.ssl.trustStore=/my dir/it'\''s.p12'");
    }

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(der::integer(3), [2, 1, 3]);
        assert_eq!(der::integer(10_000), [2, 2, 0x27, 0x10]);
        assert_eq!(der::integer(128), [2, 2, 0, 0x80]);
        assert_eq!(der::octets(&[0; 200])[..3], [4, 0x81, 200]);
        assert_eq!(der::octets(&[0; 300])[..4], [4, 0x82, 1, 44]);
        assert_eq!(der::oid(oid::ANY_EXTENDED_KEY_USAGE), [6, 4, 0x55, 0x1d, 0x25, 0]);
    }
}
