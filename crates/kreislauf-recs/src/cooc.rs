//! Learned associations: item-to-item co-occurrence and popularity.
//!
//! Two items co-occur when one profile interacted with both within
//! `window_days` of each other (a recipe clicked three days after a wine
//! was bought). Each profile counts at most once per pair (with its
//! strongest pair weight), so a single enthusiast cannot create an
//! association on their own.
//!
//! * pair weight = min(w_a, w_b), where w = kind weight × 0.5^(age /
//!   half-life): old evidence fades, and a pair is as strong as its weaker
//!   event;
//! * `support` = number of distinct profiles with the pair (undecayed);
//!   pairs below `min_support` are dropped;
//! * `lift` = support × P / (n_a × n_b) with P profiles and n_x the
//!   profiles that touched x (how much more often than chance);
//! * ranking `score` = decayed cosine c_ab / √(d_a d_b) shrunk by
//!   support / (support + λ), which is symmetric, bounded in [0, 1] and
//!   does not over-reward rare items the way raw lift does.
//!
//! Only the top `max_neighbours` per item are kept (sparse lists, not a
//! matrix), with compact `u32` item ids.

use serde::{Deserialize, Serialize};

use crate::interactions::{InteractionLog, ItemIdx, KindWeights};

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Co-occurrence learning parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoocConfig {
    /// Two events of a profile co-occur when at most this far apart.
    pub window_days: f64,
    /// Pairs further apart count less: weight × 0.5^(gap / this); `None`
    /// counts every pair in the window fully. Keeps basket-level pairs
    /// (wine + cheese, wine → recipe) strongest while long-term taste
    /// (this customer buys Rieslings) still registers.
    pub proximity_half_life_days: Option<f64>,
    /// Half-life of evidence; `None` disables decay.
    pub half_life_days: Option<f64>,
    /// Minimum number of distinct profiles supporting a pair.
    pub min_support: u32,
    /// Neighbours kept per item.
    pub max_neighbours: usize,
    /// Shrinkage λ in support / (support + λ).
    pub shrinkage: f32,
    /// Evidence weight per interaction kind.
    pub kind_weights: KindWeights,
}

impl Default for CoocConfig {
    fn default() -> Self {
        Self {
            window_days: 365.0,
            proximity_half_life_days: None,
            half_life_days: Some(365.0),
            min_support: 2,
            max_neighbours: 100,
            shrinkage: 3.0,
            kind_weights: KindWeights::default(),
        }
    }
}

/// One learned neighbour of an item.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    /// The associated item.
    pub item: ItemIdx,
    /// Shrunk, decayed cosine in [0, 1] (ranking score).
    pub score: f32,
    /// Lift (1.0 = independent).
    pub lift: f32,
    /// Distinct profiles with the pair.
    pub support: u32,
}

/// Sparse top-N neighbour lists in CSR layout.
#[derive(Clone, Debug, Default)]
pub struct CoocGraph {
    offsets: Vec<usize>,
    neighbours: Vec<Neighbour>,
}

impl CoocGraph {
    /// Neighbours of an item, best first (empty for unknown items).
    pub fn neighbours(&self, item: ItemIdx) -> &[Neighbour] {
        let index = item.0 as usize;
        match (self.offsets.get(index), self.offsets.get(index + 1)) {
            (Some(&start), Some(&end)) => &self.neighbours[start..end],
            _ => &[],
        }
    }

    /// Total stored neighbour entries.
    pub fn edge_count(&self) -> usize {
        self.neighbours.len()
    }

    /// Approximate heap bytes.
    pub fn approx_memory_bytes(&self) -> usize {
        self.offsets.capacity() * std::mem::size_of::<usize>()
            + self.neighbours.capacity() * std::mem::size_of::<Neighbour>()
    }
}

/// Exponential decay factor for an event `age_secs` old.
pub(crate) fn decay(age_secs: i64, half_life_days: Option<f64>) -> f32 {
    match half_life_days {
        Some(half_life) if half_life > 0.0 => {
            let age_days = (age_secs.max(0) as f64) / SECONDS_PER_DAY;
            0.5f64.powf(age_days / half_life) as f32
        }
        _ => 1.0,
    }
}

/// Time-decayed popularity per item.
#[derive(Clone, Debug, Default)]
pub struct Popularity {
    /// Σ kind weight × decay, per item index.
    pub(crate) score: Vec<f32>,
}

/// Year-over-year seasonality of the popularity signal.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seasonality {
    /// Share of "what sold in the coming weeks one year ago" in the
    /// popularity signal (0 disables).
    pub share: f32,
    /// How many days ahead (one year ago) count as the season.
    pub horizon_days: f64,
}

impl Default for Seasonality {
    fn default() -> Self {
        Self {
            share: 0.5,
            horizon_days: 30.0,
        }
    }
}

impl Popularity {
    /// Computes decayed popularity at `reference_ts`. With seasonality and
    /// at least a year of data, the signal mixes recent popularity with
    /// last year's popularity in the window starting at the same date
    /// (sparkling before New Year, rosé before summer), each normalised to
    /// a maximum of 1.
    pub(crate) fn build(
        log: &InteractionLog,
        item_count: usize,
        reference_ts: i64,
        half_life_days: Option<f64>,
        weights: &KindWeights,
        seasonality: Option<Seasonality>,
    ) -> Self {
        let by_code = weights.by_code();
        let mut score = vec![0.0f32; item_count];
        let mut seasonal = vec![0.0f32; item_count];
        let year_ago = reference_ts - 365 * 86_400;
        let horizon =
            seasonality.map_or(0, |season| (season.horizon_days * SECONDS_PER_DAY) as i64);
        for index in 0..log.len() {
            let item = log.items[index] as usize;
            let timestamp = log.timestamps[index];
            if let Some(slot) = score.get_mut(item) {
                let kind_weight = by_code[usize::from(log.kinds[index]).min(4)];
                *slot += kind_weight * decay(reference_ts - timestamp, half_life_days);
                if (year_ago - 7 * 86_400..=year_ago + horizon).contains(&timestamp) {
                    seasonal[item] += kind_weight;
                }
            }
        }
        let share = seasonality.map_or(0.0, |season| season.share.clamp(0.0, 1.0));
        let seasonal_max = seasonal.iter().copied().fold(0.0f32, f32::max);
        if share > 0.0 && seasonal_max > 0.0 {
            let recent_max = score
                .iter()
                .copied()
                .fold(0.0f32, f32::max)
                .max(f32::MIN_POSITIVE);
            for (recent, last_year) in score.iter_mut().zip(&seasonal) {
                *recent = (1.0 - share) * *recent / recent_max + share * last_year / seasonal_max;
            }
        }
        Self { score }
    }

    /// Popularity of an item (0 for unknown).
    pub fn get(&self, item: ItemIdx) -> f32 {
        self.score.get(item.0 as usize).copied().unwrap_or(0.0)
    }
}

/// Events regrouped by profile and time.
struct ProfileOrder {
    items: Vec<u32>,
    timestamps: Vec<i64>,
    weights: Vec<f32>,
    segment_of: Vec<u32>,
    segment_bounds: Vec<(u32, u32)>,
}

fn order_by_profile(log: &InteractionLog, reference_ts: i64, config: &CoocConfig) -> ProfileOrder {
    let count = log.len();
    let mut order: Vec<u32> = (0..count as u32).collect();
    // Stable sort by (profile, timestamp) keeps input order for equal keys.
    order.sort_by_key(|&index| (log.profiles[index as usize], log.timestamps[index as usize]));
    let by_code = config.kind_weights.by_code();
    let mut ordered = ProfileOrder {
        items: Vec::with_capacity(count),
        timestamps: Vec::with_capacity(count),
        weights: Vec::with_capacity(count),
        segment_of: Vec::with_capacity(count),
        segment_bounds: Vec::new(),
    };
    let mut current_profile = None;
    for (position, &index) in order.iter().enumerate() {
        let index = index as usize;
        let profile = log.profiles[index];
        if current_profile != Some(profile) {
            current_profile = Some(profile);
            ordered
                .segment_bounds
                .push((position as u32, position as u32));
        }
        let segment = ordered.segment_bounds.len() - 1;
        ordered.segment_bounds[segment].1 = position as u32 + 1;
        ordered.items.push(log.items[index]);
        ordered.timestamps.push(log.timestamps[index]);
        let kind_weight = by_code[usize::from(log.kinds[index]).min(4)];
        ordered
            .weights
            .push(kind_weight * decay(reference_ts - log.timestamps[index], config.half_life_days));
        ordered.segment_of.push(segment as u32);
    }
    ordered
}

/// Per-thread scratch space sized to the item count.
struct RowScratch {
    segment_stamp: Vec<u32>,
    segment_weight: Vec<f32>,
    row_weight: Vec<f32>,
    row_support: Vec<u32>,
    segment_touched: Vec<u32>,
    row_touched: Vec<u32>,
}

impl RowScratch {
    fn new(item_count: usize) -> Self {
        Self {
            segment_stamp: vec![u32::MAX; item_count],
            segment_weight: vec![0.0; item_count],
            row_weight: vec![0.0; item_count],
            row_support: vec![0; item_count],
            segment_touched: Vec::new(),
            row_touched: Vec::new(),
        }
    }

    fn flush_segment(&mut self) {
        for &other in &self.segment_touched {
            let other = other as usize;
            if self.row_support[other] == 0 {
                self.row_touched.push(other as u32);
            }
            self.row_support[other] += 1;
            self.row_weight[other] += self.segment_weight[other];
            self.segment_stamp[other] = u32::MAX;
        }
        self.segment_touched.clear();
    }
}

struct Marginals {
    support: Vec<u32>,
    decayed: Vec<f32>,
    profiles: u32,
}

fn marginals(ordered: &ProfileOrder, item_count: usize) -> Marginals {
    let mut support = vec![0u32; item_count];
    let mut decayed = vec![0.0f32; item_count];
    let mut stamp = vec![u32::MAX; item_count];
    let mut best = vec![0.0f32; item_count];
    let mut touched = Vec::new();
    for (segment, &(start, end)) in ordered.segment_bounds.iter().enumerate() {
        for position in start as usize..end as usize {
            let item = ordered.items[position] as usize;
            if item >= item_count {
                continue;
            }
            let weight = ordered.weights[position];
            if stamp[item] != segment as u32 {
                stamp[item] = segment as u32;
                best[item] = weight;
                touched.push(item);
            } else if weight > best[item] {
                best[item] = weight;
            }
        }
        for &item in &touched {
            support[item] += 1;
            decayed[item] += best[item];
        }
        touched.clear();
    }
    Marginals {
        support,
        decayed,
        profiles: ordered.segment_bounds.len() as u32,
    }
}

/// Builds co-occurrence neighbour lists (see module docs).
pub(crate) fn build_cooc(
    log: &InteractionLog,
    item_count: usize,
    reference_ts: i64,
    config: &CoocConfig,
    threads: usize,
) -> CoocGraph {
    let ordered = order_by_profile(log, reference_ts, config);
    let marginals = marginals(&ordered, item_count);
    // Item → positions in profile order (CSR).
    let mut item_offsets = vec![0usize; item_count + 1];
    for &item in &ordered.items {
        if (item as usize) < item_count {
            item_offsets[item as usize + 1] += 1;
        }
    }
    for index in 0..item_count {
        item_offsets[index + 1] += item_offsets[index];
    }
    let mut fill = item_offsets.clone();
    let mut item_positions = vec![0u32; item_offsets[item_count]];
    for (position, &item) in ordered.items.iter().enumerate() {
        if (item as usize) < item_count {
            item_positions[fill[item as usize]] = position as u32;
            fill[item as usize] += 1;
        }
    }
    let window_secs = (config.window_days * SECONDS_PER_DAY) as i64;
    let threads = threads.clamp(1, 16);
    let compute_rows = |thread: usize| -> Vec<(usize, Vec<Neighbour>)> {
        let mut scratch = RowScratch::new(item_count);
        let mut rows = Vec::new();
        let mut item = thread;
        while item < item_count {
            let positions = &item_positions[item_offsets[item]..item_offsets[item + 1]];
            if !positions.is_empty() {
                let row = compute_row(
                    item,
                    positions,
                    &ordered,
                    &marginals,
                    window_secs,
                    config,
                    &mut scratch,
                );
                if !row.is_empty() {
                    rows.push((item, row));
                }
            }
            item += threads;
        }
        rows
    };
    let mut all_rows: Vec<Vec<(usize, Vec<Neighbour>)>> = if threads == 1 {
        vec![compute_rows(0)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|thread| scope.spawn(move || compute_rows(thread)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut rows: Vec<Option<Vec<Neighbour>>> = vec![None; item_count];
    for chunk in all_rows.drain(..) {
        for (item, row) in chunk {
            rows[item] = Some(row);
        }
    }
    let mut offsets = Vec::with_capacity(item_count + 1);
    let total: usize = rows
        .iter()
        .map(|row| row.as_ref().map_or(0, Vec::len))
        .sum();
    let mut neighbours = Vec::with_capacity(total);
    offsets.push(0);
    for row in rows {
        if let Some(row) = row {
            neighbours.extend(row);
        }
        offsets.push(neighbours.len());
    }
    CoocGraph {
        offsets,
        neighbours,
    }
}

fn compute_row(
    item: usize,
    positions: &[u32],
    ordered: &ProfileOrder,
    marginals: &Marginals,
    window_secs: i64,
    config: &CoocConfig,
    scratch: &mut RowScratch,
) -> Vec<Neighbour> {
    let proximity_scale = match config.proximity_half_life_days {
        Some(half_life) if half_life > 0.0 => (1.0 / (half_life * SECONDS_PER_DAY)) as f32,
        _ => 0.0,
    };
    let mut current_segment = u32::MAX;
    for &position in positions {
        let position = position as usize;
        let segment = ordered.segment_of[position];
        if segment != current_segment {
            scratch.flush_segment();
            current_segment = segment;
        }
        let (start, end) = ordered.segment_bounds[segment as usize];
        let timestamp = ordered.timestamps[position];
        let weight = ordered.weights[position];
        let mut visit = |other_position: usize| -> bool {
            if (ordered.timestamps[other_position] - timestamp).abs() > window_secs {
                return false;
            }
            let other = ordered.items[other_position] as usize;
            if other == item || other >= scratch.segment_stamp.len() {
                return true;
            }
            let gap = (ordered.timestamps[other_position] - timestamp).abs() as f32;
            let proximity = if proximity_scale > 0.0 {
                (-gap * proximity_scale).exp2()
            } else {
                1.0
            };
            let pair_weight = weight.min(ordered.weights[other_position]) * proximity;
            if scratch.segment_stamp[other] != segment {
                scratch.segment_stamp[other] = segment;
                scratch.segment_weight[other] = pair_weight;
                scratch.segment_touched.push(other as u32);
            } else if pair_weight > scratch.segment_weight[other] {
                scratch.segment_weight[other] = pair_weight;
            }
            true
        };
        let mut left = position;
        while left > start as usize {
            left -= 1;
            if !visit(left) {
                break;
            }
        }
        for right in position + 1..end as usize {
            if !visit(right) {
                break;
            }
        }
    }
    scratch.flush_segment();

    let support_a = marginals.support[item].max(1) as f32;
    let decayed_a = marginals.decayed[item];
    let profiles = marginals.profiles as f32;
    let mut row = Vec::new();
    for &other in &scratch.row_touched {
        let other = other as usize;
        let support = scratch.row_support[other];
        let weight = scratch.row_weight[other];
        scratch.row_support[other] = 0;
        scratch.row_weight[other] = 0.0;
        if support < config.min_support.max(1) {
            continue;
        }
        let denominator = (decayed_a * marginals.decayed[other]).sqrt();
        if denominator <= 0.0 {
            continue;
        }
        let cosine = (weight / denominator).min(1.0);
        let shrink = support as f32 / (support as f32 + config.shrinkage.max(0.0));
        let lift = support as f32 * profiles / (support_a * marginals.support[other].max(1) as f32);
        row.push(Neighbour {
            item: ItemIdx(other as u32),
            score: cosine * shrink,
            lift,
            support,
        });
    }
    scratch.row_touched.clear();
    let keep = config.max_neighbours;
    let by_score = |left: &Neighbour, right: &Neighbour| {
        right
            .score
            .total_cmp(&left.score)
            .then_with(|| left.item.cmp(&right.item))
    };
    if row.len() > keep && keep > 0 {
        row.select_nth_unstable_by(keep - 1, by_score);
        row.truncate(keep);
    }
    row.sort_by(by_score);
    row.shrink_to_fit();
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::InteractionKind;

    const DAY: i64 = 86_400;

    fn log_of(events: &[(u32, u32, i64)]) -> InteractionLog {
        let mut log = InteractionLog::default();
        for &(profile, item, day) in events {
            log.push(profile, ItemIdx(item), InteractionKind::Purchase, day * DAY);
        }
        log
    }

    fn no_decay() -> CoocConfig {
        CoocConfig {
            half_life_days: None,
            proximity_half_life_days: None,
            window_days: 14.0,
            min_support: 1,
            shrinkage: 0.0,
            ..CoocConfig::default()
        }
    }

    fn find(graph: &CoocGraph, from: u32, to: u32) -> Option<Neighbour> {
        graph
            .neighbours(ItemIdx(from))
            .iter()
            .copied()
            .find(|neighbour| neighbour.item == ItemIdx(to))
    }

    #[test]
    fn lift_and_cosine_match_hand_computation() {
        // 4 profiles. Item 0 and 1 together for profiles 0,1; item 0 alone
        // for profile 2; item 1 alone for profile 3.
        let log = log_of(&[
            (0, 0, 1),
            (0, 1, 1),
            (1, 0, 2),
            (1, 1, 3),
            (2, 0, 1),
            (3, 1, 1),
        ]);
        let graph = build_cooc(&log, 2, 10 * DAY, &no_decay(), 1);
        let pair = find(&graph, 0, 1).unwrap_or_else(|| panic!("pair missing"));
        assert_eq!(pair.support, 2);
        // lift = 2 * 4 / (3 * 3)
        assert!((pair.lift - 8.0 / 9.0).abs() < 1e-6, "{pair:?}");
        // cosine = 2 / sqrt(3 * 3)
        assert!((pair.score - 2.0 / 3.0).abs() < 1e-6, "{pair:?}");
        // Symmetric.
        let back = find(&graph, 1, 0).unwrap_or_else(|| panic!("reverse pair missing"));
        assert!((back.score - pair.score).abs() < 1e-6);
    }

    #[test]
    fn window_and_per_profile_dedup() {
        // Profile 0 buys 0 and 1 three times in a row: counts once.
        // Profile 1 buys 0 then 2 forty days later: outside the window.
        let log = log_of(&[
            (0, 0, 1),
            (0, 1, 1),
            (0, 0, 2),
            (0, 1, 2),
            (1, 0, 1),
            (1, 2, 41),
        ]);
        let graph = build_cooc(&log, 3, 50 * DAY, &no_decay(), 1);
        assert_eq!(find(&graph, 0, 1).map(|pair| pair.support), Some(1));
        assert!(find(&graph, 0, 2).is_none());
    }

    #[test]
    fn min_support_filters_rare_pairs() {
        let log = log_of(&[
            (0, 0, 1),
            (0, 1, 1),
            (1, 0, 1),
            (1, 1, 1),
            (2, 0, 1),
            (2, 2, 1),
        ]);
        let config = CoocConfig {
            min_support: 2,
            ..no_decay()
        };
        let graph = build_cooc(&log, 3, 5 * DAY, &config, 2);
        assert!(find(&graph, 0, 1).is_some());
        assert!(find(&graph, 0, 2).is_none());
    }

    #[test]
    fn decay_makes_old_cooccurrence_weigh_less() {
        // Item 0 pairs with 1 in profiles 0,1 (old) and with 2 in 2,3 (recent).
        let log = log_of(&[
            (0, 0, 0),
            (0, 1, 0),
            (1, 0, 0),
            (1, 1, 0),
            (2, 0, 360),
            (2, 2, 360),
            (3, 0, 360),
            (3, 2, 360),
        ]);
        let config = CoocConfig {
            half_life_days: Some(30.0),
            ..no_decay()
        };
        let graph = build_cooc(&log, 3, 365 * DAY, &config, 1);
        let old = find(&graph, 0, 1).unwrap_or_else(|| panic!("old pair missing"));
        let recent = find(&graph, 0, 2).unwrap_or_else(|| panic!("recent pair missing"));
        assert_eq!(old.support, recent.support);
        assert!(
            recent.score > 10.0 * old.score,
            "recent {recent:?} old {old:?}"
        );
        assert_eq!(graph.neighbours(ItemIdx(0))[0].item, ItemIdx(2));
        // Without decay they are tied.
        let flat = build_cooc(&log, 3, 365 * DAY, &no_decay(), 1);
        let (old, recent) = (find(&flat, 0, 1), find(&flat, 0, 2));
        assert_eq!(old.map(|pair| pair.score), recent.map(|pair| pair.score));
    }

    #[test]
    fn shrinkage_and_neighbour_cap() {
        let mut events = Vec::new();
        for other in 1..=5u32 {
            for profile in 0..other {
                events.push((profile * 10 + other, 0, 1));
                events.push((profile * 10 + other, other, 1));
            }
        }
        let log = log_of(&events);
        let config = CoocConfig {
            max_neighbours: 2,
            shrinkage: 3.0,
            ..no_decay()
        };
        let graph = build_cooc(&log, 6, 5 * DAY, &config, 1);
        let row = graph.neighbours(ItemIdx(0));
        assert_eq!(row.len(), 2);
        // Best (highest support, highest cosine) first, rest cut off.
        assert_eq!(row[0].item, ItemIdx(5));
        assert_eq!(row[1].item, ItemIdx(4));
    }

    #[test]
    fn popularity_decays() {
        let log = log_of(&[(0, 0, 0), (1, 1, 100), (2, 1, 100)]);
        let popularity = Popularity::build(
            &log,
            2,
            100 * DAY,
            Some(10.0),
            &KindWeights::default(),
            None,
        );
        assert!(popularity.get(ItemIdx(0)) < 0.001);
        assert!((popularity.get(ItemIdx(1)) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn seasonal_popularity_remembers_last_year() {
        // Item 0 sold last year in the weeks after the reference date;
        // item 1 sold recently.
        let log = log_of(&[(0, 0, 5), (1, 0, 10), (2, 1, 360), (3, 1, 362)]);
        let season = Seasonality {
            share: 0.5,
            horizon_days: 30.0,
        };
        let with = Popularity::build(
            &log,
            2,
            365 * DAY,
            Some(30.0),
            &KindWeights::default(),
            Some(season),
        );
        let without = Popularity::build(
            &log,
            2,
            365 * DAY,
            Some(30.0),
            &KindWeights::default(),
            None,
        );
        assert!(without.get(ItemIdx(0)) < 0.01 * without.get(ItemIdx(1)));
        assert!(with.get(ItemIdx(0)) > 0.4, "{}", with.get(ItemIdx(0)));
        assert!((with.get(ItemIdx(1)) - 0.5).abs() < 1e-3);
    }
}
