//! Random candidates and one-gene mutations (random search and regularised evolution).

use rand::Rng;

use super::choices::SearchSpace;
use super::decisions::DecisionKind;
use super::genes::Candidate;
use super::SpaceError;

impl SearchSpace {
    /// A candidate drawn uniformly per decision: every gene's choices are equally likely,
    /// the number of blocks included (so candidates are not uniform over [`Self::size`]: a
    /// one-block candidate is as likely as an eight-block one, as in NAS practice).
    ///
    /// Fails only on a space with an empty choice list.
    pub fn sample(&self, rng: &mut impl Rng) -> Result<Candidate, SpaceError> {
        let decisions = self.decisions();
        let mut choices = Vec::with_capacity(decisions.len());
        for decision in &decisions {
            if decision.n_choices == 0 {
                return Err(SpaceError::EmptyChoices {
                    gene: decision.kind.gene().json_path(),
                });
            }
            choices.push(rng.random_range(0..decision.n_choices));
        }
        self.decode(&choices)
    }

    /// The parent with exactly one gene changed to another of its choices (Real et al. 2019's
    /// mutation): the gene is drawn uniformly among the parent's active genes that have more
    /// than one choice, the new value uniformly among the others.
    ///
    /// When the mutated gene is the number of blocks, blocks are dropped from the end or new
    /// blocks with uniformly drawn genes are appended; the existing blocks stay as they are.
    /// A parent in a space with no choice to make comes back unchanged; a parent outside the
    /// space is an error.
    pub fn mutate(&self, parent: &Candidate, rng: &mut impl Rng) -> Result<Candidate, SpaceError> {
        let mut choices = self
            .encode(parent)
            .ok_or_else(|| SpaceError::NotInSpace { id: parent.id() })?;
        let decisions = self.decisions();
        let n_blocks = parent.architecture.blocks.len();
        let mutable: Vec<usize> = (0..decisions.len())
            .filter(|&i| decisions[i].is_active(n_blocks) && decisions[i].n_choices > 1)
            .collect();
        if mutable.is_empty() {
            return Ok(parent.clone());
        }
        let at = mutable[rng.random_range(0..mutable.len())];
        let old = choices[at];
        let mut new = rng.random_range(0..decisions[at].n_choices - 1);
        if new >= old {
            new += 1;
        }
        choices[at] = new;
        if decisions[at].kind == DecisionKind::NumBlocks {
            let new_blocks = self.architecture.n_blocks.get(new).copied().unwrap_or(0);
            for (choice, decision) in choices.iter_mut().zip(&decisions) {
                if let Some(block) = decision.kind.block() {
                    if block >= n_blocks && block < new_blocks {
                        *choice = rng.random_range(0..decision.n_choices);
                    }
                }
            }
        }
        self.decode(&choices)
    }
}
