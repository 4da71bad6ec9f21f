"""How much of a feed's text is kept: caps shared by the RSS/Atom and JSON Feed readers."""

TITLE_MAX = 1000
SUMMARY_MAX = 20000
