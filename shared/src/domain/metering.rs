//! Sharded usage counters with per-shard budgets: the pure rules.
//!
//! A metered counter of one license, metric and period is spread over
//! [`crate::store::keys::COUNTER_SHARDS`] items. Under a hard limit every
//! shard holds `room` (budget not yet used) and `used`; a record takes its
//! quantity from one shard under the condition `room >= quantity`, so no
//! record funnels through one item. A shard nothing was written to yet
//! (*untouched*: no `room`, nothing used) holds its *opening* room,
//! `openings(limit − carried)[i]`, without it being written: the first
//! write to it sets `room = if_not_exists(room, opening) ± x`, so a
//! period's first records need no budget step of their own. The invariant,
//! kept by every write:
//!
//! * every `room >= 0` (each write that lowers a room is conditioned on it);
//! * `Σ room + Σ used = T`, counting an untouched shard's opening as its
//!   room, where `T` is the limit the shards were budgeted for (or `Σ used`
//!   when a limit was lowered below it, with every room 0).
//!
//! Hence `Σ used <= limit` whenever a record is accepted: the limit is exact.
//! A record is refused only when an atomic snapshot of every shard shows
//! `Σ room < quantity` (see [`plan`]).

/// One shard as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shard {
    pub used: u64,
    /// Unused budget; `None`: the shard was never budgeted (absent, or
    /// written while the metric had no hard limit).
    pub room: Option<u64>,
    /// The limit the room was budgeted for.
    pub limit: Option<u64>,
}

impl Shard {
    /// Nothing written under a hard limit and nothing used: the shard holds
    /// its opening room (see [`openings`]). The store's condition for it is
    /// the same: `room` absent and `used` absent or 0.
    pub fn untouched(&self) -> bool {
        self.room.is_none() && self.used == 0
    }

    /// This shard after `quantity` was taken from it (`opening`: its room
    /// while untouched), as the take's conditioned write leaves it.
    pub fn after_take(&mut self, quantity: u64, opening: u64, limit: u64) {
        let room = self.room.unwrap_or(opening);
        self.room = Some(room.saturating_sub(quantity));
        self.used = self.used.saturating_add(quantity);
        self.limit = Some(limit);
    }
}

/// What a record under a hard limit does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Take the quantity from this shard (`room >= quantity` per the read).
    Take(usize),
    /// No single shard can hold the quantity but together they can: move
    /// these amounts of room (donor, amount) into `into`, then take.
    Gather {
        into: usize,
        moves: Vec<(usize, u64)>,
    },
    /// A shard is unbudgeted (used without a hard limit) or budgeted for
    /// another limit: set every shard's room to these values
    /// (Σ = max(0, limit − Σ used)).
    Budget(Vec<u64>),
    /// Σ room < quantity: refuse (only on an atomic snapshot).
    Exhausted { used: u64 },
}

/// `limit` split over `n` shards as evenly as integers allow.
pub fn shares(limit: u64, n: usize) -> Vec<u64> {
    let n = n.max(1);
    let (base, rest) = (limit / n as u64, limit % n as u64);
    (0..n)
        .map(|i| base + u64::from((i as u64) < rest))
        .collect()
}

/// The room every untouched shard of a counter opens with under `limit`:
/// what is left of it after `carried`, split over `n` shards. The same for
/// every record that reads the same limit, so concurrent first records of a
/// period agree on it without writing it first.
pub fn openings(limit: u64, carried: u64, n: usize) -> Vec<u64> {
    shares(limit.saturating_sub(carried), n)
}

/// The next step of a record of `quantity` under `limit`, given every
/// shard (in shard order), what a counter of an earlier release already
/// counted in this period (`carried`, never written again) and a starting
/// shard (random), so concurrent records spread over the shards with room.
pub fn plan(shards: &[Shard], carried: u64, limit: u64, quantity: u64, start: usize) -> Plan {
    let n = shards.len().max(1);
    let budgeted = shards
        .iter()
        .all(|s| s.untouched() || (s.room.is_some() && s.limit == Some(limit)));
    if !budgeted || shards.is_empty() {
        let used: u64 = shards.iter().map(|s| s.used).sum::<u64>() + carried;
        return Plan::Budget(shares(limit.saturating_sub(used), n));
    }
    let open = openings(limit, carried, n);
    let room = |i: usize| match shards[i].untouched() {
        true => open[i],
        false => shards[i].room.unwrap_or(0),
    };
    let total: u64 = (0..n).map(room).sum();
    // The head carries the counter's index rows (the export's, the
    // license report's): while it is untouched, a record writes it.
    let head_first = shards[0].untouched();
    let taker = match head_first {
        true => (room(0) >= quantity).then_some(0),
        false => (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| room(i) >= quantity),
    };
    if let Some(i) = taker {
        return Plan::Take(i);
    }
    if total < quantity {
        return Plan::Exhausted {
            used: shards.iter().map(|s| s.used).sum::<u64>() + carried,
        };
    }
    let into = match head_first {
        true => 0,
        false => (0..n).max_by_key(|&i| (room(i), i)).unwrap_or(0),
    };
    let mut need = quantity - room(into);
    let mut donors: Vec<usize> = (0..n).filter(|&i| i != into && room(i) > 0).collect();
    donors.sort_by_key(|&i| std::cmp::Reverse(room(i)));
    let mut moves = Vec::new();
    for d in donors {
        if need == 0 {
            break;
        }
        let m = room(d).min(need);
        moves.push((d, m));
        need -= m;
    }
    Plan::Gather { into, moves }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Shard {
        fn with_used(mut self, used: u64) -> Self {
            self.used = used;
            self
        }
    }

    fn budgeted(rooms: &[u64], limit: u64) -> Vec<Shard> {
        rooms
            .iter()
            .map(|&r| Shard {
                used: 0,
                room: Some(r),
                limit: Some(limit),
            })
            .collect()
    }

    #[test]
    fn shares_sum_to_the_limit() {
        for (limit, n) in [(1200, 8), (10, 8), (0, 8), (7, 3), (u64::MAX, 8)] {
            let s = shares(limit, n);
            assert_eq!(s.len(), n);
            assert_eq!(s.iter().map(|&x| x as u128).sum::<u128>(), limit as u128);
            assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn untouched_shards_hold_their_opening_room_unwritten() {
        let none = vec![Shard::default(); 4];
        // Openings [3, 3, 2, 2]: a take, no budget step; while the head
        // (which carries the index rows) is untouched, from the head.
        assert_eq!(plan(&none, 0, 10, 1, 0), Plan::Take(0));
        assert_eq!(plan(&none, 0, 10, 3, 2), Plan::Take(0));
        // The head's opening is too small for 5: room is gathered into it.
        assert_eq!(
            plan(&none, 0, 10, 5, 0),
            Plan::Gather {
                into: 0,
                moves: vec![(1, 2)]
            }
        );
        // Once the head is written, records spread from their start.
        let mut head = none.clone();
        head[0].after_take(1, 3, 10);
        assert_eq!(plan(&head, 0, 10, 2, 2), Plan::Take(2));
        assert_eq!(plan(&head, 0, 10, 3, 0), Plan::Take(1));
        assert_eq!(plan(&none, 0, 10, 11, 0), Plan::Exhausted { used: 0 });
        // What an earlier release's counter carried is not in the openings.
        assert_eq!(openings(10, 6, 4), vec![1, 1, 1, 1]);
        assert_eq!(plan(&none, 6, 10, 5, 0), Plan::Exhausted { used: 6 });
        // Untouched beside budgeted: each counts with its own room.
        let mut s = budgeted(&[0, 0, 0, 0], 10);
        s[0].used = 3;
        s[3] = Shard::default();
        assert_eq!(plan(&s, 0, 10, 2, 0), Plan::Take(3));
        assert_eq!(plan(&s, 0, 10, 3, 0), Plan::Exhausted { used: 3 });
    }

    #[test]
    fn a_take_leaves_the_shard_as_its_write_does() {
        let mut s = Shard::default();
        s.after_take(2, 3, 10);
        assert_eq!(s, budgeted(&[1], 10)[0].with_used(2));
        s.after_take(1, 3, 10);
        assert_eq!(s, budgeted(&[0], 10)[0].with_used(3));
    }

    #[test]
    fn unbudgeted_or_rebudgeted_shards_are_budgeted_from_what_is_used() {
        // Used without a hard limit (no room): budget from what is used.
        let mut soft = vec![Shard::default(); 4];
        soft[1].used = 4;
        assert_eq!(plan(&soft, 0, 10, 1, 0), Plan::Budget(vec![2, 2, 1, 1]));
        // The limit changed from 10 to 6 with 5 used: 1 unit of room left.
        let mut s = budgeted(&[0, 0, 5, 0], 10);
        s[0].used = 5;
        assert_eq!(plan(&s, 0, 6, 1, 0), Plan::Budget(vec![1, 0, 0, 0]));
        // Lowered below what is used: no room anywhere.
        assert_eq!(plan(&s, 0, 3, 1, 0), Plan::Budget(vec![0, 0, 0, 0]));
        // What an earlier release's counter carried counts too.
        assert_eq!(plan(&soft, 2, 10, 1, 0), Plan::Budget(vec![1, 1, 1, 1]));
    }

    #[test]
    fn takes_from_the_first_shard_with_room_from_the_start() {
        let s = budgeted(&[0, 2, 0, 5], 7);
        assert_eq!(plan(&s, 0, 7, 1, 0), Plan::Take(1));
        assert_eq!(plan(&s, 0, 7, 1, 2), Plan::Take(3));
        assert_eq!(plan(&s, 0, 7, 3, 0), Plan::Take(3));
    }

    #[test]
    fn gathers_when_no_shard_holds_the_quantity_alone() {
        let s = budgeted(&[2, 1, 3, 0], 6);
        assert_eq!(
            plan(&s, 0, 6, 6, 0),
            Plan::Gather {
                into: 2,
                moves: vec![(0, 2), (1, 1)]
            }
        );
        assert_eq!(plan(&s, 0, 6, 7, 0), Plan::Exhausted { used: 0 });
    }
}
