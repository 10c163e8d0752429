"""The Streamlit dashboard: pages that present what ``analytics.views`` returns."""
