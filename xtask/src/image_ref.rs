//! Image references (`[registry[:port]/]repository[:tag][@sha256:hex]`), parsed
//! by the grammar of the distribution project's reference package, so that a
//! reference refused here would be refused by a registry or a kubelet too.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` when the reference names one.
    pub registry: Option<String>,
    /// The path inside the registry, e.g. `jerry-learn/job-test`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        if s.is_empty() {
            return Err("it is empty".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(format!(
                    "the tag {tag:?} is not valid (letters, digits, '_', '.', '-', starting with a letter, digit or '_', at most 128)"
                ));
            }
        }
        if name.len() > 255 {
            return Err("the name is longer than 255 characters".into());
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (Some(first), rest),
            _ => (None, name),
        };
        if let Some(registry) = registry {
            let (host, port) = match registry.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (registry, None),
            };
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            // Digits only: u16's parser also takes a leading '+', which no
            // registry client does.
            let port_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok();
            if !host_ok || port.is_some_and(|p| !port_ok(p)) {
                return Err(format!("the registry {registry:?} is not a host name with an optional port"));
            }
        }
        for component in repository.split('/') {
            if !path_component_ok(component) {
                return Err(format!(
                    "the path component {component:?} is not valid (lowercase letters and digits, separated by '.', '_', '__' or dashes)"
                ));
            }
        }
        let image = ImageRef {
            registry: registry.map(str::to_owned),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        };
        // The repository as the registry names it has the same limit.
        let named = image.registry_repository();
        if named.len() > 255 {
            return Err(format!(
                "the name is longer than 255 characters as Docker Hub files it ({named}, {})",
                named.len()
            ));
        }
        Ok(image)
    }

    /// Whether the reference names Docker Hub: no registry, or one of its hosts.
    pub fn on_docker_hub(&self) -> bool {
        matches!(self.registry.as_deref(), None | Some("docker.io" | "index.docker.io"))
    }

    /// The repository as the registry names it: Docker Hub files a
    /// one-component name under `library/`.
    pub fn registry_repository(&self) -> String {
        if self.on_docker_hub() && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }

    /// The reference without tag and digest: `registry/repository`.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// What a daemon pulls and lists for this reference: with a digest, the
    /// digest decides and the tag is dropped (`repo@sha256:...`).
    pub fn pull_reference(&self) -> ImageRef {
        match self.digest {
            Some(_) => ImageRef { tag: None, ..self.clone() },
            None => self.clone(),
        }
    }

    /// The same reference pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef { digest: Some(digest.to_owned()), ..self.clone() }
    }
}

/// clap parses `--image` with this: its error names the flag and the value.
impl std::str::FromStr for ImageRef {
    type Err = String;

    fn from_str(s: &str) -> Result<ImageRef, String> {
        ImageRef::parse(s)
            .map_err(|why| format!("not an image reference: {why}; e.g. registry.example.com/team/job-test:1.0.0"))
    }
}

/// In JSON a reference is its text.
impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn parse_digest(d: &str) -> Result<String, String> {
    match d.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
        {
            Ok(d.to_owned())
        }
        _ => Err(format!("the digest {d:?} is not sha256:<64 lowercase hex digits>")),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_ok(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_digest_decides_what_is_pulled() {
        let pinned = ImageRef::parse(&format!("127.0.0.1:5000/job-test:0.1.0@sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!(pinned.pull_reference().to_string(), format!("127.0.0.1:5000/job-test@sha256:{}", "a".repeat(64)));
        let tagged = ImageRef::parse("127.0.0.1:5000/job-test:0.1.0").unwrap();
        assert_eq!(tagged.pull_reference(), tagged);
    }

    #[test]
    fn parses_the_references_users_write() {
        let acr = ImageRef::parse("crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/jerry-learn/job-test:1.0.0").unwrap();
        assert_eq!(acr.registry.as_deref(), Some("crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com"));
        assert_eq!(acr.repository, "jerry-learn/job-test");
        assert_eq!(acr.tag.as_deref(), Some("1.0.0"));
        let local = ImageRef::parse(&format!("localhost:5000/job-test:0.1.0@{DIGEST}")).unwrap();
        assert_eq!(local.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(local.digest.as_deref(), Some(DIGEST));
        let hub = ImageRef::parse("library/busy_box__x.y-z").unwrap();
        assert_eq!((hub.registry, hub.tag), (None, None));
        for s in [
            "job-test:0.1.0",
            "127.0.0.1:5000/a/b:c",
            &format!("job-test@{DIGEST}"),
            "crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/jerry-learn/job-test:1.0.0",
        ] {
            assert_eq!(ImageRef::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn refuses_what_a_registry_would_refuse() {
        for (s, why) in [
            ("", "empty"),
            ("Job-Test:1", "path component"),
            ("job-test:", "tag"),
            ("job-test:-x", "tag"),
            ("job-test@sha256:abc", "digest"),
            ("job-test@md5:0123", "digest"),
            ("a//b", "path component"),
            ("a/b-", "path component"),
            ("a/b..c", "path component"),
            ("host:99999/a", "registry"),
            // Found by the image_reference fuzz target: oci-client refused
            // what this accepted.
            ("1:+5615/1.0", "registry"),
            (&"a".repeat(250), "library/"),
            ("host:/a", "registry"),
            ("-host.com/a", "registry"),
        ] {
            let e = ImageRef::parse(s).unwrap_err();
            assert!(e.contains(why), "{s:?}: {e}");
        }
    }
}
