//! The position's one special value, the start of a table (`BEFORE_ANY_ID`), and how a
//! position is shown to people and to `status`.

use crate::event::Position;
use crate::value::Id;

pub(super) fn status_position(p: Id) -> Position {
    if p == BEFORE_ANY_ID {
        Position::Start
    } else {
        Position::At(p)
    }
}

/// The position of a job that has replicated nothing yet: below every id, negative ones included
/// (the sources clamp it to their key type's minimum).
pub const BEFORE_ANY_ID: Id = i64::MIN as Id - 1;

pub(crate) fn show_position(p: Id) -> String {
    if p == BEFORE_ANY_ID {
        "the start of the table".into()
    } else {
        p.to_string()
    }
}
