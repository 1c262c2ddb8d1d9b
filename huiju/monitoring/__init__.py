"""Monitoring the departments (监控): what the platform should have received, and what looks wrong."""
