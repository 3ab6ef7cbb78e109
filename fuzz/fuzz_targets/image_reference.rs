//! An image reference as `--image` and the settings take it.
//!
//! Checked: never panics; what parses prints back to itself and is a
//! reference oci-client (which pushes it) parses too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtask::image_ref::ImageRef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(image) = ImageRef::parse(text) else { return };
    let printed = image.to_string();
    assert_eq!(ImageRef::parse(&printed).as_ref(), Ok(&image), "{text:?} printed as {printed:?}");
    let tag = image.tag.clone().unwrap_or_else(|| "latest".into());
    let oci = xtask::push::target::oci_reference(&image, &tag);
    let whole = oci.whole();
    assert!(whole.parse::<oci_client::Reference>().is_ok(), "{text:?} pushes as {whole:?}, which oci-client refuses");
});
