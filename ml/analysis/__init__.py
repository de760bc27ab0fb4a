"""Analyses of an embedding: what any run (trained or imported) can have computed on it.

neighbors        the exact kNN graph shared by everything here, trustworthiness
projection       pca, tsne, umap
clustering       kmeans, dbscan, hdbscan, agglomerative; mixture: gmm
cluster_metrics  scores against labels, comparison of two clusterings
run_analyses     the run-directory level entry points the CLI and the job workers call
"""
