//! The STARFACE REST objects: login, groups, the directory join, phone numbers, phone config
//! and redirects.
#![no_main]
use ess::json::{self, Parser};
use ess::starface::numbers::NumberIndex;
use ess::starface::objects::{
    auth_token, find_group, group_members, login_nonce, read_directory, Forwarding, PhoneConfig,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = read_directory("G", &[1, 2, 3], Parser::new(text));
    let numbers = NumberIndex::read(Parser::new(text)).unwrap_or_default();
    let _ = find_group(Parser::new(text), "G");
    if let Ok(members) = group_members(Parser::new(text)) {
        let _ = read_directory("G", &members, Parser::new("[]"));
    }
    // What the tree parser refuses, the streaming readers refuse too.
    let tree = json::parse(text);
    if let Ok(list) = Forwarding::read_list(Parser::new(text), 1, &numbers) {
        assert!(tree.is_ok());
        for f in &list {
            assert_eq!(f.with_enabled(f.enabled), *f.raw());
        }
    }
    if let Ok(pc) = PhoneConfig::read(Parser::new(text)) {
        assert!(tree.is_ok());
        assert_eq!(pc.with_dnd(pc.dnd), *pc.raw());
    }
    let Ok(v) = tree else {
        return;
    };
    let _ = login_nonce(&v);
    let _ = auth_token(&v);
});
