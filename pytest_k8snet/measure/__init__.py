"""Measure: the engine that runs every probe once per run, and the document it builds."""

from .cluster import Cluster, Pair, ServiceResult, UdpCheck

__all__ = ["Cluster", "Pair", "ServiceResult", "UdpCheck"]
