// The console: sign-in until there is a session, then the shell with one route per page.
import { LocationProvider, Route, Router } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { Loading } from './components/bits.jsx';
import { Shell } from './components/Shell.jsx';
import { Toasts } from './components/Toasts.jsx';
import { Audit } from './pages/admin/Audit.jsx';
import { Keys } from './pages/admin/Keys.jsx';
import { Users } from './pages/admin/Users.jsx';
import { DeadLetters } from './pages/deadletters/DeadLetters.jsx';
import { NotFound } from './pages/NotFound.jsx';
import { Overview } from './pages/overview/Overview.jsx';
import { ScriptsPage } from './pages/scripts/ScriptsPage.jsx';
import { SignIn } from './pages/SignIn.jsx';
import { TaskDetail } from './pages/tasks/TaskDetail.jsx';
import { TasksPage } from './pages/tasks/TasksPage.jsx';
import { Connectors } from './pages/triggers/Connectors.jsx';
import { Cron } from './pages/triggers/Cron.jsx';
import { Endpoints } from './pages/triggers/Endpoints.jsx';
import { Hub } from './pages/triggers/Hub.jsx';
import { Subscriptions } from './pages/triggers/Subscriptions.jsx';
import { loadSession, session } from './session.js';
import { useStore } from './store.js';

export function App() {
  const user = useStore(session);
  const [problem, setProblem] = useState(null);
  useEffect(() => {
    loadSession().catch(setProblem);
  }, []);
  if (user === undefined) return <Loading />;
  return (
    <LocationProvider>
      {user === null ? (
        <SignIn problem={problem} />
      ) : (
        <Shell user={user}>
          <Router>
            <Route path="/" component={Overview} />
            <Route path="/scripts/:name?/:tab?/:fn?" component={ScriptsPage} user={user} />
            <Route path="/tasks" component={TasksPage} />
            <Route path="/tasks/:id" component={TaskDetail} user={user} />
            <Route path="/dead-letters" component={DeadLetters} user={user} />
            <Route path="/connectors/:name?" component={Connectors} user={user} />
            <Route path="/subscriptions/:name?" component={Subscriptions} user={user} />
            <Route path="/cron" component={Cron} user={user} />
            <Route path="/endpoints/:name?" component={Endpoints} user={user} />
            <Route path="/hub/:tab?" component={Hub} user={user} />
            <Route path="/keys" component={Keys} user={user} />
            <Route path="/users" component={Users} user={user} />
            <Route path="/audit" component={Audit} user={user} />
            <Route default component={NotFound} />
          </Router>
        </Shell>
      )}
      <Toasts />
    </LocationProvider>
  );
}
