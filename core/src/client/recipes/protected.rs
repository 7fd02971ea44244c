//! Creating a recipe's sequential znode exactly once although a reply may be lost (Curator's
//! "protected" create): the name carries a token unique to the caller, and after a connection
//! loss the znode is looked up by that token before any new create.

use super::support::{
    child_path, retryable, Backoff, Deadline, RecipeError, RecipeResult, SessionSlot,
};
use crate::proto::{Acl, CreateMode};

/// Creates the sequential znode `parent/name_prefix<sequence>`; returns its path.
///
/// `name_prefix` must be unique to the caller (it holds a random token). A create whose reply
/// was lost to a connection loss may have happened; creating again would leave a second
/// sequential znode that blocks every later contender while the session lives (a lock would
/// wait on its own orphan, a latch elect a node nobody owns). So after a loss no create is
/// sent before a lookup by the prefix succeeded and found nothing; the lookup itself is
/// retried until `deadline` (at most `RETRY_TOTAL_MS_MAX`). Giving up, it deletes what carries
/// the prefix, as far as the connection lets it.
pub(crate) fn create_protected(
    slot: &SessionSlot,
    parent: &str,
    name_prefix: &str,
    data: &[u8],
    mode: CreateMode,
    deadline: Deadline,
) -> RecipeResult<String> {
    let path = child_path(parent, name_prefix);
    let mut backoff = Backoff::until(deadline);
    loop {
        let mut failure = match slot
            .client()?
            .create(&path, data, &Acl::open_unsafe(), mode)
        {
            Ok(created) => return Ok(created),
            Err(error) => RecipeError::from(error),
        };
        // Until a lookup answers, the create may or may not have happened.
        loop {
            if !retryable(&failure) || !backoff.pause() {
                delete_prefixed(slot, parent, name_prefix);
                return Err(failure);
            }
            match find_prefixed(slot, parent, name_prefix) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => break,
                Err(error) => failure = error,
            }
        }
    }
}

/// The path of `parent`'s child named with `name_prefix`, if there is one.
fn find_prefixed(
    slot: &SessionSlot,
    parent: &str,
    name_prefix: &str,
) -> RecipeResult<Option<String>> {
    let children = slot.client()?.get_children(parent, None)?;
    Ok(children
        .into_iter()
        .find(|child| child.starts_with(name_prefix))
        .map(|child| child_path(parent, &child)))
}

/// One attempt to delete whatever carries `name_prefix`: the caller is giving up, and a znode
/// created by a lost reply would otherwise stay.
fn delete_prefixed(slot: &SessionSlot, parent: &str, name_prefix: &str) {
    let Ok(client) = slot.client() else {
        return;
    };
    let Ok(children) = client.get_children(parent, None) else {
        return;
    };
    for child in children
        .iter()
        .filter(|child| child.starts_with(name_prefix))
    {
        let _ = client.delete(&child_path(parent, child), -1);
    }
}
