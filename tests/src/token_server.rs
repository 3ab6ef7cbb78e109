//! A registry token service (the Docker / distribution token protocol), for
//! testing bearer-token auth against the real registry: the registry
//! answers 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`,
//! the client asks this service for a token with its basic credentials, and
//! sends the token. Tokens are JWTs signed with ES256 by a key whose
//! certificate (in the `x5c` header) the test CA issued; the registry trusts
//! that CA (`rootcertbundle`). Plain HTTP on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use crate::tls::TestCa;

pub const ISSUER: &str = "job-test-token-issuer";
pub const SERVICE: &str = "job-test-registry";

pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    issued: Arc<AtomicU32>,
}

impl TokenServer {
    /// Serves tokens to `user` with `password`, signed with a key the CA certifies.
    pub fn start(ca: &TestCa, user: &'static str, password: &'static str) -> TokenServer {
        let (cert_der, pkcs8) = ca.signing_cert();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &ring::rand::SystemRandom::new())
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let issued = Arc::new(AtomicU32::new(0));
        let counter = issued.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut authorization = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(v.trim().to_owned());
                    }
                }
                let expected = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
                let response = if authorization.as_deref() != Some(expected.as_str()) {
                    let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    let target = request_line.split_whitespace().nth(1).unwrap_or("");
                    let query = target.split_once('?').map_or("", |(_, q)| q);
                    let access: Vec<_> = query
                        .split('&')
                        .filter_map(|kv| kv.strip_prefix("scope="))
                        .map(|s| s.replace("%3A", ":").replace("%2C", ",").replace("%2F", "/"))
                        .filter_map(|scope| {
                            let mut parts = scope.splitn(3, ':');
                            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                            Some(json!({ "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>() }))
                        })
                        .collect();
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let token = jwt(&key, &cert_der, user, &access, n);
                    let body = json!({ "token": token, "expires_in": 300 }).to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        TokenServer { realm, issued }
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u32 {
        self.issued.load(Ordering::Relaxed)
    }
}

fn jwt(key: &EcdsaKeyPair, cert_der: &[u8], subject: &str, access: &[serde_json::Value], n: u32) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = json!({ "typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(cert_der)] });
    let claims = json!({
        "iss": ISSUER, "sub": subject, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("token-{n}"),
        "access": access,
    });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}
