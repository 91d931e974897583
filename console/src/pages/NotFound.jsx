export function NotFound() {
  return (
    <div class="page">
      <h1>Not found</h1>
      <p>
        No page here. <a href="/">Back to the overview</a>.
      </p>
    </div>
  );
}
