"""Test, bench and demo tooling: private servers, the demo data, generated faces and papers.

Never imported by the product packages (an import-linter contract), never installed.
"""
