"""Schedules: jobs fired on a cron or an interval."""
