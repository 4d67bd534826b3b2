//! Fuzzes the subscriber CSV import parser: any body is refused as a whole with an error, or
//! every accepted row is a valid, normalised contact (re-validating it gives it back unchanged),
//! unique within the file, with a valid locale and only known components; every rejected row
//! says why.
#![no_main]

use crier::api::parse_import;
use crier::domain::{ComponentName, Contact, Locale};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let known: HashSet<String> = ["api", "web", "check-in"].map(String::from).into();
    let Ok(parsed) = parse_import(data, &known) else {
        return;
    };
    let mut seen = HashSet::new();
    for s in &parsed.batch {
        let again = match &s.contact {
            Contact::Email(a) => Contact::email(a),
            Contact::Phone(p) => Contact::phone(p.as_str()),
        };
        assert_eq!(
            again.as_ref().ok(),
            Some(&s.contact),
            "not a valid, normalised contact"
        );
        assert!(
            seen.insert(s.contact.address().to_owned()),
            "duplicate in batch"
        );
        assert_eq!(
            Locale::parse(s.locale.as_str()).ok().as_ref(),
            Some(&s.locale)
        );
        for c in &s.components {
            assert!(known.contains(c.as_str()), "unknown component {c:?}");
            assert_eq!(ComponentName::parse(c.as_str()).ok().as_ref(), Some(c));
        }
        assert!(s.confirmed);
    }
    for e in &parsed.errors {
        assert!(!e.message.is_empty(), "a rejected row without a reason");
    }
});
