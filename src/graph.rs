//! The dependency graph of resource instances (petgraph), its order, and its DOT rendering.

use crate::lower::ResourceInstance;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Edges point from a dependency to its dependent.
pub struct ResourceGraph {
    pub graph: DiGraph<String, ()>,
    pub index: HashMap<String, NodeIndex>,
}

impl ResourceGraph {
    /// Builds the graph; a dependency on an unknown address is ignored (it is not managed here),
    /// a cycle is an error naming it.
    pub fn build<'a>(
        nodes: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<ResourceGraph, String> {
        let nodes: Vec<(&str, &[String])> = nodes.into_iter().collect();
        let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len() * 2);
        let mut index = HashMap::with_capacity(nodes.len());
        for (address, _) in &nodes {
            let i = graph.add_node(address.to_string());
            index.insert(address.to_string(), i);
        }
        for (address, deps) in &nodes {
            let to = index[*address];
            for dep in deps.iter() {
                if let Some(&from) = index.get(dep.as_str()) {
                    graph.add_edge(from, to, ());
                }
            }
        }
        let g = ResourceGraph { graph, index };
        if let Err(cycle) = toposort(&g.graph, None) {
            let start = cycle.node_id();
            let name = &g.graph[start];
            return Err(format!(
                "resources depend on each other in a cycle through `{name}`"
            ));
        }
        Ok(g)
    }

    pub fn from_instances(instances: &[ResourceInstance]) -> Result<ResourceGraph, String> {
        ResourceGraph::build(
            instances
                .iter()
                .map(|i| (i.address.as_str(), i.dependencies.as_slice())),
        )
    }

    /// Addresses in an order where every dependency comes before its dependents and, within
    /// that, in the order the nodes were given (declaration order, so plans read like the
    /// configuration). Kahn's algorithm, always taking the earliest ready node.
    pub fn order(&self) -> Vec<String> {
        let mut waiting: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| {
                self.graph
                    .neighbors_directed(n, petgraph::Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<NodeIndex>> = self
            .graph
            .node_indices()
            .filter(|n| waiting[n.index()] == 0)
            .map(Reverse)
            .collect();
        let mut out = Vec::with_capacity(self.graph.node_count());
        while let Some(Reverse(n)) = ready.pop() {
            out.push(self.graph[n].clone());
            for next in self
                .graph
                .neighbors_directed(n, petgraph::Direction::Outgoing)
            {
                waiting[next.index()] -= 1;
                if waiting[next.index()] == 0 {
                    ready.push(Reverse(next));
                }
            }
        }
        out
    }

    /// Every address `address` depends on, directly or not.
    pub fn ancestors(&self, address: &str) -> Vec<String> {
        let Some(&start) = self.index.get(address) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.graph.node_count()];
        let mut stack = vec![start];
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            for up in self
                .graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
            {
                if !seen[up.index()] {
                    seen[up.index()] = true;
                    out.push(self.graph[up].clone());
                    stack.push(up);
                }
            }
        }
        out
    }

    /// The graph in Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph weir {\n  rankdir = \"RL\";\n  node [shape = box];\n");
        let mut names: Vec<&String> = self.graph.node_weights().collect();
        names.sort();
        for name in names {
            out.push_str(&format!("  \"{name}\";\n"));
        }
        let mut edges: Vec<(String, String)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (self.graph[b].clone(), self.graph[a].clone()))
            .collect();
        edges.sort();
        for (dependent, dependency) in edges {
            out.push_str(&format!("  \"{dependent}\" -> \"{dependency}\";\n"));
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_detects_cycles() {
        let deps_b = vec!["a".to_string()];
        let deps_c = vec!["b".to_string()];
        let g = ResourceGraph::build([
            ("c", deps_c.as_slice()),
            ("b", deps_b.as_slice()),
            ("a", &[][..]),
        ])
        .unwrap();
        assert_eq!(g.order(), vec!["a", "b", "c"]);
        assert_eq!(g.ancestors("c").len(), 2);
        assert!(g.to_dot().contains("\"c\" -> \"b\""));
        let deps_a = vec!["c".to_string()];
        assert!(
            ResourceGraph::build([
                ("c", deps_c.as_slice()),
                ("b", deps_b.as_slice()),
                ("a", deps_a.as_slice())
            ])
            .is_err()
        );
    }

    #[test]
    fn order_keeps_declaration_order_where_dependencies_allow() {
        let on_project = vec!["project".to_string()];
        let pipeline_a = vec!["project".to_string(), "block_a".to_string()];
        let on_pipeline_a = vec!["pipeline_a".to_string()];
        let g = ResourceGraph::build([
            ("project", &[][..]),
            ("block_a", on_project.as_slice()),
            ("pipeline_a", pipeline_a.as_slice()),
            ("triggers_a", on_pipeline_a.as_slice()),
            ("block_b", on_project.as_slice()),
            ("independent", &[][..]),
        ])
        .unwrap();
        assert_eq!(
            g.order(),
            [
                "project",
                "block_a",
                "pipeline_a",
                "triggers_a",
                "block_b",
                "independent"
            ]
        );
        // A dependent given before its dependency still comes after it.
        let on_late = vec!["late".to_string()];
        let g = ResourceGraph::build([("early", on_late.as_slice()), ("late", &[][..])]).unwrap();
        assert_eq!(g.order(), ["late", "early"]);
    }
}
