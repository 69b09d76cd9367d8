"""Dates and times as operators read them: to the second, with the time zone named.

Django's English formats drop the seconds ("Nov. 30, 2026, 7:27 a.m."); an operator
matching an event to a log line needs them, and the zone (TIME_ZONE is UTC: "T" prints
"UTC", or the active zone's abbreviation should one ever be activated). Formats not set
here fall back to Django's own English ones.
"""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
