"""The page (web/) end to end in headless Chromium."""
