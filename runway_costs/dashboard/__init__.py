"""The Streamlit dashboard: pages that present what ``dashboard.views`` returns."""
