//! The STARFACE client seen through the `sync::Pbx` trait.
//!
//! Objects read in a pass are kept until the pass ends, so that a write sends back exactly the
//! object just read (with every field the PBX gave us) without a second read. The phone number
//! list is the exception: it is the same for every user and changes as rarely as the directory,
//! so the daemon keeps it from pass to pass and drops it with each directory refresh.

use std::collections::HashMap;

use crate::model::Presence;
use crate::model::Redirect;
use crate::starface::{
    Forwarding, NumberIndex, NumberKind, PhoneConfig, Starface, StarfaceError, UserId,
};
use crate::sync::{Pbx, PbxError};

/// A pass's view of the PBX. Create one per pass, with the number list of an earlier pass if
/// it is still current (`into_numbers` hands it back).
pub struct StarfacePbx<'a> {
    starface: &'a mut Starface,
    numbers: Option<NumberIndex>,
    phone: HashMap<UserId, PhoneConfig>,
    forwardings: HashMap<(UserId, String), Forwarding>,
}

impl<'a> StarfacePbx<'a> {
    pub fn new(starface: &'a mut Starface, numbers: Option<NumberIndex>) -> StarfacePbx<'a> {
        StarfacePbx {
            starface,
            numbers,
            phone: HashMap::new(),
            forwardings: HashMap::new(),
        }
    }

    /// The number list, if this pass had or read one.
    pub fn into_numbers(self) -> Option<NumberIndex> {
        self.numbers
    }
}

fn err(e: StarfaceError) -> PbxError {
    PbxError {
        unreachable: e.is_unreachable(),
        message: e.to_string(),
    }
}

impl Pbx for StarfacePbx<'_> {
    fn dnd(&mut self, user: UserId) -> Result<bool, PbxError> {
        let pc = self.starface.phone_config(user).map_err(err)?;
        let on = pc.dnd;
        self.phone.insert(user, pc);
        Ok(on)
    }

    fn set_dnd(&mut self, user: UserId, on: bool) -> Result<(), PbxError> {
        let pc = match self.phone.remove(&user) {
            Some(pc) => pc,
            None => self.starface.phone_config(user).map_err(err)?,
        };
        self.starface.set_dnd(user, &pc, on).map_err(err)
    }

    fn redirects(&mut self, user: UserId) -> Result<Vec<Redirect>, PbxError> {
        // The number list is the same for every user: read it when first needed.
        let numbers = match self.numbers.take() {
            Some(n) => n,
            None => self.starface.numbers().map_err(err)?,
        };
        let read = self.starface.forwardings(user, &numbers);
        self.numbers = Some(numbers);
        let list = read.map_err(err)?;
        let mut out = Vec::with_capacity(list.len());
        for f in list {
            out.push(Redirect {
                id: f.id.clone(),
                number: f.number.clone(),
                internal: f.kind == NumberKind::Internal,
                enabled: f.enabled,
                has_destination: f.destination.is_some(),
            });
            self.forwardings.insert((user, f.id.clone()), f);
        }
        Ok(out)
    }

    fn set_redirect(&mut self, user: UserId, id: &str, on: bool) -> Result<(), PbxError> {
        let Some(f) = self.forwardings.remove(&(user, id.to_string())) else {
            return Err(PbxError {
                message: format!("redirect {id} of user {user} was not read before writing"),
                unreachable: false,
            });
        };
        self.starface.set_forwarding(user, &f, on).map_err(err)
    }

    fn set_chat(
        &mut self,
        user: UserId,
        presence: Option<Presence>,
        text: Option<&str>,
    ) -> Result<(), PbxError> {
        self.starface.set_chat(user, presence, text).map_err(err)
    }
}
