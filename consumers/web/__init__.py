"""The one web app of the people's pages (server-rendered): sign-in, the school feed, and later the others."""
